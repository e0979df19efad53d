"""Packing, the local scheduler and the per-container executor."""
