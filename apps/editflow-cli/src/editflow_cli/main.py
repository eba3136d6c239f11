"""The ``editflow`` command: convert, a2d, generate, edit, chat, eval.

Every failure a user can cause (a missing checkpoint, an unreachable server, a bad key, an
unsupported model, a bad option value) prints one line saying what to do and exits 2; no
traceback.
"""

from __future__ import annotations

import argparse
import sys

from editflow_cli import chat, convert_cmd, edit_cmd, eval_cmd, generate
from editflow_cli.errors import CliError


def build_parser() -> argparse.ArgumentParser:
    """The ``editflow`` parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="editflow",
        description="Edit Flow models: convert checkpoints, generate and edit text, chat, "
        "evaluate.",
        epilog="Run `editflow COMMAND --help` for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    convert_cmd.register(sub)
    generate.register(sub)
    edit_cmd.register(sub)
    chat.register(sub)
    eval_cmd.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``editflow`` command: run the chosen one; its errors are one line on stderr (exit 2)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as err:
        print(f"editflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"editflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
