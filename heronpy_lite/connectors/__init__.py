"""Sources for the Streamlet API (``heronpy.connectors``)."""
