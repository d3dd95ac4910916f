"""The ``musicprod`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)`` (which adds a parser and sets
``func``). Bad input anywhere surfaces as :class:`InputError`: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from musicprod_common.errors import InputError, OneLineParser

COMMAND_MODULES = [
    "recipes.render_cmd",
    "recipes.demo_cmd",
    "recipes.inpaint_cmd",
    "recipes.inpaint_batch_cmd",
    "recipes.regenerate_cmd",
    "recipes.style_cmd",
    "recipes.continue_cmd",
    "recipes.transition_cmd",
    "recipes.transition_stems_cmd",
    "recipes.accompany_cmd",
    "recipes.harmonize_cmd",
    "recipes.infill_midi_cmd",
    "recipes.analyze_cmd",
    "recipes.app_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="musicprod", description="Controllable music production with diffusion models.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except InputError as err:
        sys.stderr.write(f"musicprod {args.command}: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("musicprod: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
