"""Fixtures for the unit and component tests: the hot path's two implementations,
side by side (registered as a pytest plugin by tests/conftest.py).

``tuple_path`` runs a test once per tuple path (`tuplepath.IMPLEMENTATIONS`:
the pure-Python reference and, where it was built, the C extension); every
task built during the test uses it. ``tracker_impl`` does the same for
the stream manager's XOR tracker. ``c_path`` and ``c_tracker`` give the C
ones alone, for tests whose reference is what the Python ones call. Under
``CI=true`` a missing C extension fails these tests instead of leaving them to
the reference alone.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest

from heronpy_lite.instance import tuplepath
from heronpy_lite.stmgr import acking

_CI = os.environ.get("CI") == "true"


def _require_native(name: str, built: bool) -> None:
    if not built and _CI:
        pytest.fail(f"the C {name} was not built (pip install -e . compiles it)")


@pytest.fixture(params=["python", "c"])
def tuple_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    if request.param == "c":
        _require_native("tuple path", tuplepath.NATIVE is not None)
        if tuplepath.NATIVE is None:
            pytest.skip("the C tuple path is not built")
    path = tuplepath.IMPLEMENTATIONS[request.param]
    monkeypatch.setattr(tuplepath, "default", lambda: path)
    return path


@pytest.fixture
def c_path() -> ModuleType:
    """The C tuple path alone: for tests whose reference (msgpack, unpack_batch) is
    what the pure-Python path calls, so that running them on it would test nothing."""
    _require_native("tuple path", tuplepath.NATIVE is not None)
    if tuplepath.NATIVE is None:
        pytest.skip("the C tuple path is not built")
    return tuplepath.NATIVE


@pytest.fixture
def c_tracker() -> Any:
    """The C XOR tracker alone, for tests that hold it to the Python reference."""
    _require_native("XOR tracker", acking.NATIVE is not None)
    if acking.NATIVE is None:
        pytest.skip("the C XOR tracker is not built")
    return acking.NATIVE


@pytest.fixture(params=["python", "c"])
def tracker_impl(request: pytest.FixtureRequest) -> Any:
    """The XOR tracker class under test (both take the same arguments)."""
    if request.param == "c":
        _require_native("XOR tracker", acking.NATIVE is not None)
        if acking.NATIVE is None:
            pytest.skip("the C XOR tracker is not built")
        return acking.NATIVE
    return acking.PyXorTracker
