"""The stream manager process: routes tuple batches for one container."""
