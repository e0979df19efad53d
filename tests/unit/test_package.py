"""The copy of a topology's code for containers on other hosts (scheduler/package.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from heronpy_lite.errors import SubmitError
from heronpy_lite.scheduler import package


def _tree(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "words.py").write_text("WORDS = ['a']\n")
    (root / "topo.py").write_text("import lib.words\n")
    for skipped in (".git", ".venv", "__pycache__"):
        (root / skipped).mkdir()
        (root / skipped / "big").write_bytes(b"x" * 1000)
    return root / "topo.py"


def test_the_file_and_its_package_root_are_copied_without_caches_or_the_working_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topo = _tree(tmp_path / "code")
    working_root = tmp_path / "code" / "home"  # a working root under the package root
    (working_root / "topologies").mkdir(parents=True)
    monkeypatch.setenv("HERONPY_LITE_HOME", str(working_root))
    workdir = working_root / "topologies" / "T"
    file, root = package.copy_package(topo, workdir)
    assert (file, root) == (workdir / "package" / "topo.py", workdir / "package")
    copied = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert copied == ["lib", "lib/__init__.py", "lib/words.py", "topo.py"]


def test_a_package_root_beyond_the_limit_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topo = _tree(tmp_path / "code")
    monkeypatch.setenv("HERONPY_LITE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(package, "MAX_PACKAGE_BYTES", 20)  # lib/words.py is 14, topo.py 17
    with pytest.raises(SubmitError, match=r"holds more than 0 MiB: put the topology file"):
        package.copy_package(topo, tmp_path / "home" / "topologies" / "T")
    assert not (tmp_path / "home" / "topologies" / "T" / "package").exists()
