"""The Streamlet API (``heronpy.streamlet``): functional topologies.

    builder = Builder()
    words = builder.new_source(ArrayLooper(["a b", "b c"])).flat_map(str.split)
    counts = words.map(lambda w: (w, 1)).reduce_by_key_and_window(
        WindowConfig.create_tumbling_window(5), lambda a, b: a + b)
    counts.log()
    Runner().run("WordCount", Config(), builder)

Submit the file with ``heronpy-lite submit local FILE - WordCount``, or
submit the builder object: ``heronpy-lite submit local FILE builder --name
WordCount``.
"""

from heronpy_lite.streamlet.builder import Builder
from heronpy_lite.streamlet.config import Config
from heronpy_lite.streamlet.context import Context
from heronpy_lite.streamlet.generator import Generator
from heronpy_lite.streamlet.keyedwindow import KeyedWindow
from heronpy_lite.streamlet.resources import Resources
from heronpy_lite.streamlet.runner import Runner
from heronpy_lite.streamlet.streamlet import Streamlet
from heronpy_lite.streamlet.transformoperator import TransformOperator
from heronpy_lite.streamlet.window import Window
from heronpy_lite.streamlet.windowconfig import WindowConfig

__all__ = [
    "Builder",
    "Config",
    "Context",
    "Generator",
    "KeyedWindow",
    "Resources",
    "Runner",
    "Streamlet",
    "TransformOperator",
    "Window",
    "WindowConfig",
]
