"""``heronpy-lite update`` with real processes on the local cluster: a
fields-grouped bolt rescaled 2 -> 4 -> 1 under traffic at ATLEAST_ONCE with
every number delivered exactly once; a stateful word count rescaled mid-run at
EFFECTIVELY_ONCE whose final counts are exactly the input's (keyed state moved
by key group); and the requests update refuses, each with one clear line."""

from __future__ import annotations

from pathlib import Path

from cli_harness import Cli
from rescale_harness import rescale_stateful, rescale_under_traffic


def test_a_bolt_rescaled_2_4_1_under_traffic_delivers_every_number_once(
    cli: Cli, tmp_path: Path
) -> None:
    rescale_under_traffic(cli, tmp_path)


def test_a_stateful_word_count_rescaled_mid_run_ends_with_exact_counts(
    cli: Cli, tmp_path: Path
) -> None:
    rescale_stateful(cli, tmp_path)
