"""Fixtures of the integration suite: each test module gets its own working root
(``HERONPY_LITE_HOME``), so runs never collide. The harness is `cli_harness`;
`support.wait_for` polls a condition with a deadline (no sleeps as
synchronisation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import Cli


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("home"))
