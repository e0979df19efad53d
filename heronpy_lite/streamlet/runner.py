"""Running a streamlet topology (``heronpy.streamlet.runner``)."""

from __future__ import annotations

import logging
from typing import Any

from heronpy_lite.streamlet.builder import Builder
from heronpy_lite.streamlet.config import Config

log = logging.getLogger(__name__)


class Runner:
    """Builds the topology of a `Builder` and submits it."""

    def run(self, name: str, config: Config, builder: Builder) -> None:
        """Build ``builder``'s topology named ``name`` with ``config`` and submit it.

        In a file given to ``heronpy-lite submit local FILE - NAME`` the
        topology is handed over by ``TopologyBuilder.build_and_submit()``, as
        in Heron. The builder also remembers ``config``, so that a file whose
        ``Builder`` is submitted as ATTR (``heronpy-lite submit local FILE
        builder``) runs with it too.
        """
        if not isinstance(name, str):
            raise RuntimeError("Name has to be a string type")
        if not isinstance(config, Config):
            raise RuntimeError("config has to be a Config type")
        if not isinstance(builder, Builder):
            raise RuntimeError("builder has to be a Builder type")
        builder._config = config
        bldr = builder._to_topology_builder(name)
        submit: Any = getattr(bldr, "build_and_submit", None)
        if submit is None:
            log.warning(
                "this heronpy_lite has no TopologyBuilder.build_and_submit: %s was not "
                "submitted; submit the Builder as ATTR (heronpy-lite submit local FILE ATTR)",
                name,
            )
            return
        submit()
