"""heronpy's message classes (``heronpy.proto``) as plain Python objects: what
`HeronComponentSpec.get_protobuf()` returns. heronpy_lite sends no protobuf."""
