"""A project laid out as Heron's examples are: its imports are rooted at the folder
above this package (``heronpy-lite submit ... --package-root heron_layout``),
and every file imports ``heronpy`` unchanged."""
