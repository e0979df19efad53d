"""The heronpy-lite command line, one module per verb."""
