"""Tuples up to the frame limit pass intact across containers; a larger one
fails at emit with a clear error, and the spout keeps running."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from cli_harness import TOPOLOGIES, Cli, count_lines
from support import wait_for

SIZES = [1_000, 1_000_000, 8 * 2**20, 8 * 2**20, 20 * 2**20, 40 * 2**20, 10]
TOO_LARGE = 5


def test_large_tuples(cli: Cli, tmp_path: Path) -> None:
    with cli.submitted(TOPOLOGIES / "large.py", "Large", output=tmp_path) as name:
        wait_for(lambda: count_lines(tmp_path, "sink-") >= len(SIZES) - 1, 60, "the blobs")
        log = next(cli.log_dir(name).glob("instance-spout-*.log")).read_text()
    with open(next(tmp_path.glob("sink-*.jsonl"))) as f:
        got = [json.loads(line) for line in f if line.endswith("\n")]
    expected = [
        [seq, size, zlib.crc32(bytes([seq % 251]) * size)]
        for seq, size in enumerate(SIZES)
        if seq != TOO_LARGE
    ]
    assert got == expected
    # packed: array header 1 + seq 1 + bin32 header 5 + the blob; the limit is the frame
    # (32 MiB) minus the DATA header 15, the stream name 7 and an array header 5
    assert (
        f"emits a tuple of {40 * 2**20 + 7} bytes on stream 'default'; "
        f"the limit is {32 * 2**20 - 27} (heron.wire.max.frame.bytes)"
    ) in log
