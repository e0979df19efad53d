"""Files as sources (``heronpy.connectors.textfiles``)."""
