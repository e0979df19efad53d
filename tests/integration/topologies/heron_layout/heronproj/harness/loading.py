"""How the wrappers find their user class: by dotted path, in the topology's own
package (the file ``context.get_topology_pex_path()`` names is on sys.path)."""

import importlib
import zipfile


def user_class(context, class_path):
    pex = context.get_topology_pex_path()
    if not (
        pex.endswith((".py", ".zip", ".pex")) and (pex.endswith(".py") or zipfile.is_zipfile(pex))
    ):
        raise RuntimeError(f"unexpected topology path {pex!r}")
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)
