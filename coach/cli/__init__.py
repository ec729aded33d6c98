"""The `coach` command: a thin shell over the services.

Each sub-command lives in its own module with ``register(subparsers)``; this module only wires them and
turns ``CoachError`` into a one-line message and an exit code (no tracebacks for users). Any other exception is
a bug: it too becomes one line and exit code 1, with the traceback only under ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from coach.errors import CoachError

COMMAND_MODULES = (
    "coach.cli.index_cmd",
    "coach.cli.doctor_cmd",
    "coach.cli.rewrite_cmd",
    "coach.cli.eval_cmd",
    "coach.cli.chat_cmd",
    "coach.cli.sessions_cmd",
    "coach.cli.bench_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="coach", description="Communication coach for IT leaders.")
    parser.add_argument("--debug", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `coach` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except CoachError as exc:
        print(f"coach: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("coach: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line, the details only on request
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        # Only the exception's type: its message may quote a URL, a key or a draft.
        print(f"coach: unexpected error ({type(exc).__name__}). Run again with --debug for the details "
              "and report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
