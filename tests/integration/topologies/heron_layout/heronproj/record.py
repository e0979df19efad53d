"""Where the components of this project write what they saw: one JSON line per
event in ``<test.output.dir>/<component>-<task>.jsonl``, flushed per line."""

import json
import os


class Recorder:
    def __init__(self, config, context, name=None):
        folder = config["test.output.dir"]
        os.makedirs(folder, exist_ok=True)
        name = name or context.get_component_id()
        path = os.path.join(folder, f"{name}-{context.get_task_id()}.jsonl")
        self._out = open(path, "a", buffering=1)

    def write(self, *values):
        self._out.write(json.dumps(list(values)) + "\n")
