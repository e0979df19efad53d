"""heronpy_lite: a record-at-a-time topology engine compatible with heronpy.

User code imports from `heronpy_lite.api`; everything else is the engine.
"""

__version__ = "0.1.0"
