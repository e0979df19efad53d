"""The metrics manager process: one per container, serves Prometheus /metrics."""
