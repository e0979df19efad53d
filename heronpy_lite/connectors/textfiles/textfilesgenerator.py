"""``heronpy.connectors.textfiles.textfilesgenerator``: lines of files."""

from __future__ import annotations

import glob
import logging
from typing import IO, Any

from heronpy_lite.streamlet.generator import Generator

log = logging.getLogger(__name__)


class TextFileGenerator(Generator):
    """One element per line (with its newline, as ``readlines`` gives it) of
    the files matching ``filepattern``, then nothing.

    The files are split over the source's partitions (each task takes every
    n-th file of the sorted list, by its partition index). Files are read in
    sorted order, lines in file order (heronpy read both backwards), and a
    line at a time, so a large file is never all in memory. A file that
    cannot be opened is logged and skipped.
    """

    def __init__(self, filepattern: str) -> None:
        super().__init__()
        self._pattern = filepattern
        self._files = sorted(glob.glob(filepattern))
        self._to_consume: list[str] = []
        self._current: IO[str] | None = None

    def setup(self, context: Any) -> None:
        index = context.get_partition_index()
        self._to_consume = self._files[index :: context.get_num_partitions()]
        log.info("TextFileGenerator files to consume: %s", self._to_consume)

    def get(self) -> Any:
        while True:
            if self._current is None:
                if not self._to_consume:
                    return None
                path = self._to_consume.pop(0)
                try:
                    self._current = open(path, encoding="utf8")  # noqa: SIM115
                except OSError as exc:
                    log.error("could not open %s: %s", path, exc)
                    continue
                log.info("now reading file %s", path)
            line = self._current.readline()
            if line:
                return line
            self._current.close()
            self._current = None
