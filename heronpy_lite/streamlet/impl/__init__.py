"""How streamlet operations run: one spout or bolt class per operation."""
