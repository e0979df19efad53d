"""``heronpy-lite``: the command line. One module per verb; errors are one
line on stderr and a non-zero exit code (tracebacks with ``--verbose``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from heronpy_lite.cli import activate, kill, restart, status, submit, tracker, ui, update, version
from heronpy_lite.cli import list as list_cmd
from heronpy_lite.errors import HeronpyLiteError

VERBS = (submit, kill, activate, list_cmd, status, restart, update, tracker, ui, version)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="heronpy-lite", description="Run heronpy topologies: submit, inspect, control."
    )
    p.add_argument("--verbose", "-v", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for verb in VERBS:
        verb.add_parser(sub)
    for verb_parser in sub.choices.values():
        # also after the verb; SUPPRESS keeps one given before it
        verb_parser.add_argument(
            "--verbose",
            "-v",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if not args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kazoo logs every reconnect attempt; an unreachable ZooKeeper is
        # reported as one StateManagerError line instead
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # here, where a reader that went away is handled below
        return code
    except HeronpyLiteError as exc:
        if args.verbose:
            traceback.print_exc()
            detail = getattr(exc, "detail", None)
            if detail:
                print(detail, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`... | head`): stop quietly, as Unix tools do; stdout
        # goes to /dev/null so that flushing it at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        print(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --verbose)", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
