"""Test sources (``heronpy.connectors.mock``)."""
