"""The loader: heronpy as another name of heronpy_lite (the import hook), Heron's
submit styles (ATTR, ``-`` as __main__, archives), --package-root, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from heronpy_lite.api._loader import load_topology
from heronpy_lite.errors import TopologyLoadError

TOPOLOGY = """
import sys
from heronpy.api.bolt.bolt import Bolt
from heronpy.api.spout.spout import Spout
from heronpy.api.stream import Grouping
from heronpy.api.topology import TopologyBuilder

class Words(Spout):
    outputs = ["word"]
    def next_tuple(self):
        pass

class Sink(Bolt):
    def process(self, tup):
        pass

def build(name):
    builder = TopologyBuilder(name)
    words = builder.add_spout("words", Words, par=1)
    builder.add_bolt("sink", Sink, par=1, inputs={words: Grouping.SHUFFLE})
    return builder
"""


@pytest.fixture(autouse=True)
def isolated_imports() -> Iterator[None]:
    """Each test's folders and modules leave with it (the loader adds both)."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------ import hook


def run_python(code: str, path: list[Path]) -> subprocess.CompletedProcess[str]:
    env_path = ":".join(str(p) for p in path)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_hook_makes_heronpy_the_same_modules_and_leaves_other_processes_alone(
    tmp_path: Path,
) -> None:
    # a stand-in for a real heronpy installed in the same environment
    write(tmp_path / "site" / "heronpy" / "__init__.py", "REAL = True\n")
    write(tmp_path / "site" / "heronpy" / "api" / "__init__.py", "REAL = True\n")
    proc = run_python(
        """
        import heronpy_lite.api, heronpy
        print(getattr(heronpy, "REAL", False))          # heronpy_lite alone installs nothing
        from heronpy_lite.api import _import_hook
        _import_hook.install()
        import heronpy, heronpy.api.bolt.bolt as b, heronpy_lite.api.bolt.bolt as real
        print(b is real, heronpy.__name__, real.__spec__.name, getattr(heronpy, "REAL", False))
        from heronpy.api.stream import Grouping
        print(Grouping.__module__)
        try:
            import heronpy.proto.nothing
        except ModuleNotFoundError as e:
            print(e.name, "|", e)
        """,
        [tmp_path / "site"],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "True",
        "True heronpy_lite heronpy_lite.api.bolt.bolt False",
        "heronpy_lite.api.stream",
        "heronpy.proto.nothing | No module named 'heronpy.proto.nothing' "
        "(heronpy_lite has no heronpy_lite.proto.nothing)",
    ]


# --------------------------------------------------------------------- submit styles


def test_attr_names_a_builder_whose_own_name_is_the_topologys(tmp_path: Path) -> None:
    file = write(tmp_path / "topo.py", TOPOLOGY + "builder = build('BuiltName')\n")
    assert load_topology(file, "builder").name == "BuiltName"
    assert load_topology(file, "builder", "Override").name == "Override"


def test_dash_runs_the_file_as_main_with_argv_and_takes_what_it_hands_over(
    tmp_path: Path,
) -> None:
    file = write(
        tmp_path / "topo.py",
        TOPOLOGY
        + textwrap.dedent("""
        if __name__ == "__main__":
            assert sys.argv[2:] == ["x", "--flag"], sys.argv
            build(sys.argv[1]).build_and_submit()
            sys.exit(0)   # what runs after the hand-over does not matter
        """),
    )
    argv_before, main_before = sys.argv, sys.modules["__main__"]
    definition = load_topology(file, "-", argv=[str(file), "FromArgv", "x", "--flag"])
    assert definition.name == "FromArgv"
    assert definition.components["words"].python_class.__module__ == "__main__"
    assert (sys.argv, sys.modules["__main__"]) == (argv_before, main_before)
    assert load_topology(file, "-", "Renamed", argv=[str(file), "A", "x", "--flag"]).name == (
        "Renamed"
    )


def test_a_topology_class_handed_over_with_write(tmp_path: Path) -> None:
    file = write(
        tmp_path / "topo.py",
        TOPOLOGY
        + textwrap.dedent("""
        from heronpy.api.topology import Topology

        class Written(Topology):
            words = Words.spec()
            sink = Sink.spec(inputs=[words])

        if __name__ == "__main__":
            Written.write()
        """),
    )
    assert load_topology(file, "-").name == "Written"
    assert load_topology(file, "Written", "Other").name == "Other"


@pytest.mark.parametrize(
    ("main", "message"),
    [
        (
            "if __name__ == '__main__':\n    sys.exit(1)\n",
            "topo.py exited with status 1 before handing over a topology",
        ),
        ("", "handed over no topology: with '-', it must call TopologyBuilder.build_and_submit"),
        (
            "if __name__ == '__main__':\n    build('A').build_and_submit()\n"
            "    build('B').build_and_submit()\n",
            "handed over 2 topologies (A, B)",
        ),
        (
            "if __name__ == '__main__':\n    raise KeyError('boom')\n",
            "topo.py raised: KeyError: 'boom' (at ",
        ),
    ],
)
def test_dash_errors_say_what_the_file_did(tmp_path: Path, main: str, message: str) -> None:
    file = write(tmp_path / "topo.py", TOPOLOGY + main)
    with pytest.raises(TopologyLoadError) as info:
        load_topology(file, "-", argv=[str(file)])
    assert message in str(info.value)


def test_attr_on_a_file_that_builds_when_run_says_to_use_dash(tmp_path: Path) -> None:
    file = write(
        tmp_path / "topo.py",
        TOPOLOGY + "if __name__ == '__main__':\n    build('A').build_and_submit()\n",
    )
    with pytest.raises(TopologyLoadError, match="submit it with '-'"):
        load_topology(file, "WordCount")


# ---------------------------------------------------------------------- package root


def project(tmp_path: Path) -> Path:
    """``root/proj/...`` whose files import ``proj.*``, as Heron's examples do."""
    root = tmp_path / "root"
    write(root / "proj" / "__init__.py", "")
    write(root / "proj" / "components.py", TOPOLOGY)
    write(
        root / "proj" / "topologies" / "main.py",
        """
        import sys
        from proj.components import build
        if __name__ == "__main__":
            build(sys.argv[1]).build_and_submit()
        """,
    )
    return root


def test_package_root_puts_the_projects_imports_on_the_path(tmp_path: Path) -> None:
    root = project(tmp_path)
    file = root / "proj" / "topologies" / "main.py"
    definition = load_topology(file, "-", argv=[str(file), "Rooted"], package_root=root)
    assert definition.components["words"].python_class.__module__ == "proj.components"


def test_a_failed_import_names_the_module_the_importer_and_the_option(tmp_path: Path) -> None:
    root = project(tmp_path)
    write(root / "proj" / "broken.py", "import not_installed_anywhere_x\n")
    write(root / "proj" / "topologies" / "uses_broken.py", "import proj.broken\n")
    file = root / "proj" / "topologies" / "main.py"
    with pytest.raises(TopologyLoadError) as info:
        load_topology(file, "-", argv=[str(file), "X"], search_dir=tmp_path / "elsewhere")
    message = str(info.value)
    assert "ModuleNotFoundError: No module named 'proj'" in message
    assert f"(imported by {file}, line 3)" in message
    assert "--package-root" in message
    broken = root / "proj" / "topologies" / "uses_broken.py"
    with pytest.raises(TopologyLoadError) as info:
        load_topology(broken, "-", argv=[str(broken)], package_root=root)
    assert "No module named 'not_installed_anywhere_x'" in str(info.value)
    assert f"(imported by {root / 'proj' / 'broken.py'}, line 1)" in str(info.value)


def test_a_missing_package_root_is_one_line(tmp_path: Path) -> None:
    file = write(tmp_path / "topo.py", TOPOLOGY + "builder = build('A')\n")
    with pytest.raises(TopologyLoadError, match=r"--package-root .* is not a directory"):
        load_topology(file, "builder", package_root=tmp_path / "nope")


# -------------------------------------------------------------------------- archives


def pex(tmp_path: Path, entry: str | None, bundled_heronpy: bool = True) -> Path:
    path = tmp_path / "topo.pex"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("zproj/__init__.py", "")
        archive.writestr(
            "zproj/components.py", textwrap.dedent(TOPOLOGY) + "builder = build('Z')\n"
        )
        archive.writestr(
            "zproj/main.py", "import sys\nfrom zproj.components import build\n"
            "build(sys.argv[1]).build_and_submit()\n",
        )  # fmt: skip
        archive.writestr("__main__.py", "raise SystemExit('the bootstrap ran')\n")
        if entry is not None:
            archive.writestr("PEX-INFO", json.dumps({"entry_point": entry}))
        if bundled_heronpy:  # a bundled heronpy that must never be imported
            archive.writestr(
                ".deps/heronpy-0.20.5-py3-none-any.whl/heronpy/__init__.py",
                "raise ImportError('the bundled heronpy ran')\n",
            )
    return path


def test_a_pex_runs_its_entry_point_not_its_bootstrap_nor_its_heronpy(tmp_path: Path) -> None:
    path = pex(tmp_path, "zproj.main")
    definition = load_topology(path, "-", argv=[str(path), "FromPex"])
    assert definition.name == "FromPex"
    assert definition.components["words"].python_class.__module__ == "zproj.components"
    assert not any(".deps/heronpy" in p for p in sys.path)
    assert load_topology(path, "zproj.components.builder").name == "Z"


def test_an_archive_attr_is_a_dotted_path(tmp_path: Path) -> None:
    path = pex(tmp_path, "zproj.main")
    with pytest.raises(TopologyLoadError, match=r"ATTR is a dotted path package\.module\.Attr"):
        load_topology(path, "builder")
    with pytest.raises(TopologyLoadError, match=r"cannot import 'zproj\.nope\.builder'"):
        load_topology(path, "zproj.nope.builder")


def test_a_plain_zip_runs_its_main(tmp_path: Path) -> None:
    path = pex(tmp_path, None, bundled_heronpy=False)
    with pytest.raises(TopologyLoadError, match=r"topo\.pex exited with status the bootstrap ran"):
        load_topology(path, "-")


# ------------------------------------------------------------- submit's command line


@pytest.mark.parametrize(
    ("argv", "topology_args", "options"),
    [
        (["f.py", "-", "Name", "--package-root", "R"], ["Name"], {"package_root": "R"}),
        (
            ["f.py", "-", "-r", "URL", "-t", "N", "--name=X", "--config-property", "a=1"],
            ["-r", "URL", "-t", "N"],
            {"name": "X", "config_property": ["a=1"]},
        ),
        (["f.py", "-", "N", "--", "--name", "kept"], ["N", "--name", "kept"], {"name": None}),
        (["f.py", "Attr", "--deploy-deactivated", "Name"], ["Name"], {"deploy_deactivated": True}),
    ],
)
def test_submit_options_may_follow_attr_and_the_rest_goes_to_the_file(
    argv: list[str], topology_args: list[str], options: dict[str, object]
) -> None:
    from heronpy_lite.cli import main, submit

    args = main.parser().parse_args(["submit", "local", *argv])
    assert submit.split_trailing(args) == topology_args
    for key, value in options.items():
        assert getattr(args, key) == value
