"""State for stateful components (``heronpy.api.state``)."""
