"""Checkpoint storage for EFFECTIVELY_ONCE: every instance's state per checkpoint."""
