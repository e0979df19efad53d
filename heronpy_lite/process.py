"""What every engine process does the same way at start: arguments that
locate the state manager, logging to its own file, and running its main
coroutine on uvloop until SIGTERM/SIGINT cancels it.

Not a role: tmaster, stmgr, instance, executor and scheduler all use it and
none of them imports another (see docs/decisions/0002-process-bootstrap.md).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import gc
import logging
import logging.handlers
import os
import signal
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

from heronpy_lite import log_rate
from heronpy_lite.config import EngineConfig
from heronpy_lite.statemgr import StateManager, open_state_manager

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topology", required=True)
    parser.add_argument("--state-class", default="localfs")
    parser.add_argument("--state-root", default="")
    parser.add_argument("--state-connection", default="")
    parser.add_argument("--state-session-timeout", type=float, default=10.0)
    parser.add_argument("--state-timeout", type=float, default=5.0)
    parser.add_argument("--log-file", default="")
    parser.add_argument("--log-max-bytes", type=int, default=0, help="rotate at this size")
    parser.add_argument("--log-backups", type=int, default=5, help="rotated files kept")
    parser.add_argument(
        "--log-repeat-burst", type=int, default=log_rate.DEFAULT_BURST, help="see log_rate.py"
    )
    parser.add_argument(
        "--log-repeat-interval",
        type=float,
        default=log_rate.DEFAULT_INTERVAL_SECS,
        help="see log_rate.py (0: no limit)",
    )
    parser.add_argument("--state-auth-file", default="", help="ZooKeeper digest credentials")
    parser.add_argument("--metrics-port", type=int, default=0, help="0: do not report metrics")


def common_argv(topology: str, engine: EngineConfig, log_file: Path | str) -> list[str]:
    """The argv that `add_common_args` parses, for a child process."""
    return [
        "--topology",
        topology,
        "--state-class",
        engine.statemgr_class,
        "--state-root",
        engine.statemgr_root_path,
        "--state-connection",
        engine.statemgr_connection_string,
        "--state-session-timeout",
        str(engine.zk_session_timeout_secs),
        "--state-timeout",
        str(engine.zk_timeout_secs),
        "--log-file",
        str(log_file),
        "--log-max-bytes",
        str(int(engine.log_max_mb * 1024 * 1024)),
        "--log-backups",
        str(engine.log_max_files),
        "--log-repeat-burst",
        str(engine.log_repeat_burst),
        "--log-repeat-interval",
        str(engine.log_repeat_interval_secs),
        "--state-auth-file",
        engine.zk_auth_file,
    ]


def state_manager_from_args(args: argparse.Namespace) -> StateManager:
    return open_state_manager(
        args.state_class,
        args.state_root,
        args.state_connection,
        session_timeout=args.state_session_timeout,
        timeout=args.state_timeout,
        auth_file=args.state_auth_file,
    )


def setup_process_logging(args: argparse.Namespace) -> None:
    """Logging of an engine process, from the arguments `add_common_args` parsed:
    to ``--log-file``, rotated by size (``heron.logging.maximum.size.mb`` and
    ``heron.logging.maximum.files``)."""
    setup_logging(
        args.log_file,
        max_bytes=args.log_max_bytes,
        backups=args.log_backups,
        repeats=log_rate.RepeatLimiter(args.log_repeat_burst, args.log_repeat_interval),
    )


def setup_logging(
    log_file: str,
    level: int = logging.INFO,
    *,
    max_bytes: int = 0,
    backups: int = 5,
    repeats: log_rate.RepeatLimiter | None = None,
) -> None:
    """Log to ``log_file`` (stderr if empty); with ``max_bytes``, the file is renamed
    ``<file>.1`` when it reaches that size (older ones shift up to ``<file>.<backups>``,
    the oldest is deleted) and a new one begins. Repeated lines of one log statement
    are rate-limited with a count (`log_rate`, ``heron.logging.repeat.*``); what is
    still held back at exit is summed up then.

    A full disk never stops a process: a line that cannot be written is lost (the
    handler's error goes to stderr, which may be on the same disk), the next one is
    tried again."""
    handler: logging.Handler
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        if max_bytes > 0 and backups > 0:
            handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=max_bytes, backupCount=backups
            )
        else:
            handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    limit = log_rate.RepeatFilter(repeats or log_rate.RepeatLimiter())
    handler.addFilter(limit)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    atexit.register(_write_held_back, handler, limit)


def _write_held_back(handler: logging.Handler, limit: log_rate.RepeatFilter) -> None:
    """At exit (before logging shuts down): how many lines each statement held back."""
    for line in limit.summaries():
        record = logging.LogRecord(__name__, logging.WARNING, __file__, 0, line, None, None)
        with contextlib.suppress(Exception):
            handler.emit(record)  # past the filter: these are the counts themselves


def _load_libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded here, not in the child: dlopen between fork and exec can deadlock
# when other threads (kazoo's, asyncio.to_thread's) held its lock at fork.
_LIBC = _load_libc()


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (preexec_fn)."""
    if _LIBC is not None:
        with contextlib.suppress(OSError, AttributeError):
            _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def write_atomically(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new
    one, never half of one (port files, Prometheus' file_sd targets). OSError if it
    cannot (a full disk): the old file is left as it was, and no temporary file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def write_until_done(path: str | Path, text: str, what: str, interval: float = 1.0) -> None:
    """`write_atomically`, retried every ``interval`` while it fails (a full disk):
    the process keeps running meanwhile, says so once, and says when it worked."""
    log = logging.getLogger(__name__)
    began = time.monotonic()
    failing = False
    while True:
        try:
            await asyncio.to_thread(write_atomically, path, text)
        except OSError as exc:
            if not failing:
                log.warning("cannot write %s %s, retrying every %gs: %s", what, path, interval, exc)
            failing = True
            await asyncio.sleep(interval)
            continue
        if failing:
            log.info("wrote %s after %.1fs", what, time.monotonic() - began)
        return


def connection_handler(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
    """``handle`` for `asyncio.start_server`, ending quietly when cancelled.

    At shutdown (SIGTERM) the loop cancels every connection's task; Python 3.11's
    streams then call ``task.exception()`` on the cancelled task, which raises, and
    the loop logs that as an ERROR with a CancelledError traceback, once per open
    connection (fixed in 3.12). A handler whose task ends normally is not logged."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except asyncio.CancelledError:
            writer.close()

    return handler


def tune_socket(writer: asyncio.StreamWriter, size: int) -> None:
    """Bound the kernel's send and receive buffers of a data connection to ``size``
    bytes (``heron.network.socket.buffer.bytes``; 0 keeps the kernel's)."""
    sock = writer.get_extra_info("socket")
    if size and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


#: gen-0 collection every 50,000 net allocations instead of CPython's 700
GC_THRESHOLDS = (50_000, 20, 20)


def relax_gc() -> None:
    """For processes on the tuple path (instances, stream managers), once start-up is
    done. Per tuple they allocate a few small containers and make no reference
    cycles, so CPython's default gen-0 threshold runs a collection every few
    hundred tuples, and its older generations rescan every live tree and buffer
    (benchmarks/README.md has the figures). Cycles are still collected, less
    often; what start-up built is frozen (never scanned)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def start(
    prog: str,
    main: Callable[[argparse.Namespace], Coroutine[Any, Any, int | None]],
    argv: list[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """What every process's ``main`` does: parse the common arguments and its own
    (``add_arguments``), log to its file, and run ``main(args)`` on uvloop until a
    signal stops it. Returns the exit code."""
    parser = argparse.ArgumentParser(prog=prog)
    add_common_args(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    setup_process_logging(args)
    return run(lambda: main(args))


def run(main: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    """Run ``main()`` on uvloop; SIGTERM or SIGINT cancels it. Returns its exit code."""

    async def wrapper() -> int | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await main()
        except asyncio.CancelledError:
            logging.getLogger(__name__).info("stopped by signal")
            return 0

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            code = runner.run(wrapper())
        except Exception:
            logging.getLogger(__name__).exception("process failed")
            return 1
    return int(code or 0)


def safe_write(writer: asyncio.StreamWriter | None, data: bytes | list[bytes]) -> bool:
    """Write unless the connection is gone; False if it is.

    uvloop raises RuntimeError on a write to a transport its peer has just
    closed (stock asyncio ignores it), and the task that writes is often not
    the one that owns the connection: it must not die of someone else's
    dead peer. The owner notices the loss on its next read.
    """
    if writer is None or writer.is_closing():
        return False
    try:
        if isinstance(data, list):
            writer.writelines(data)
        else:
            writer.write(data)
    except (RuntimeError, ConnectionError):
        return False
    return True


class MetricsReporter:
    """Sends ``collect()`` to the container's metrics manager every ``interval``.

    Each snapshot replaces the previous one of ``source``, so a lost snapshot
    costs nothing; while the metrics manager is unreachable, snapshots are
    skipped, never queued. Each carries the time its samples were taken, and
    ``exceptions()``, the producer's recent user-code exceptions.
    """

    def __init__(
        self,
        host: str,
        port: int,
        source: str,
        collect: Callable[[], list[Any]],
        interval: float,
        exceptions: Callable[[], list[Any]] | None = None,
        *,
        secret: bytes | None = None,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.secret = secret
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.host = host
        self.port = port
        self.source = source
        self.collect = collect
        self.interval = interval
        self.exceptions = exceptions

    async def run(self) -> None:
        from heronpy_lite.errors import RemoteProtocolError
        from heronpy_lite.security import authenticate
        from heronpy_lite.wire import messages as m

        log = logging.getLogger(__name__)
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
            except OSError:
                await asyncio.sleep(self.interval)
                continue
            if self.secret is not None:
                try:
                    await authenticate(reader, writer, self.secret, timeout=self.handshake_timeout)
                except (OSError, TimeoutError, RemoteProtocolError) as exc:
                    log.warning("metrics manager handshake failed: %s", exc)
                    writer.close()
                    await asyncio.sleep(self.interval)
                    continue
            try:
                while True:
                    taken = time.time()
                    try:
                        samples = self.collect()
                        exceptions = self.exceptions() if self.exceptions else []
                    except Exception:
                        log.exception("collecting metrics failed")
                        samples, exceptions = [], []
                    snapshot = m.MetricsSnapshot(self.source, samples, taken, exceptions)
                    if not safe_write(writer, m.encode(snapshot)):
                        raise ConnectionResetError("metrics manager connection closed")
                    await writer.drain()
                    await asyncio.sleep(self.interval)
            except ConnectionError:
                log.info("metrics manager connection lost; reconnecting")
            finally:
                writer.close()
