"""The topology's code, for containers on other hosts: its file and package root.

The local scheduler's containers import the topology file from the working
directory and its modules from the file's own folder (the package root). A
scheduler whose containers run elsewhere gets a copy of both under the
topology's working directory instead (``<working dir>/package``), which
reaches the hosts through the engine's means: for Slurm, the working root is
a path every node mounts. Caches, virtualenvs and version-control folders are
left out, and a package root beyond `MAX_PACKAGE_BYTES` is refused at submit
in one line (a topology file at the top of a home folder would copy all of it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from heronpy_lite.config import home
from heronpy_lite.errors import SubmitError

#: the largest package root submit copies
MAX_PACKAGE_BYTES = 256 * 2**20
#: what is never part of a topology's code
SKIPPED = (".git", ".hg", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache")


def _skip(folder: str, names: list[str]) -> set[str]:
    # never the working root itself (it may live under the package root)
    root = home().resolve()
    return {n for n in names if n in SKIPPED or (Path(folder) / n).resolve() == root}


def _size(root: Path) -> int:
    total = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(set(dirs) - _skip(folder, dirs))
        for name in files:
            try:
                total += (Path(folder) / name).lstat().st_size
            except OSError:
                continue
            if total > MAX_PACKAGE_BYTES:
                return total
    return total


def copy_package(path: Path, workdir: Path) -> tuple[Path, Path]:
    """Copy ``path``'s package root (its folder) to ``workdir/package``: the copy's
    (topology file, package root). SubmitError if the root is too large."""
    root = path.resolve().parent
    if _size(root) > MAX_PACKAGE_BYTES:
        raise SubmitError(
            f"the topology's folder {root} holds more than {MAX_PACKAGE_BYTES // 2**20} MiB: "
            "put the topology file in a folder of its own code"
        )
    dest = workdir / "package"
    shutil.copytree(root, dest, ignore=_skip, symlinks=True)
    return dest / path.name, dest
