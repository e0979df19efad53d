"""The instance process: hosts exactly one spout or bolt task."""
