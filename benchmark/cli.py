"""``facebench``: the command-line entry point.

    facebench validate [--params params.yaml]   check params.yaml and print the resolved config
    facebench data [--params params.yaml]       run the data stage without its notebook

Bad input exits with status 2 and a one-line message naming what was wrong and what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmark import config
from benchmark.errors import ConfigError, DataError


def _validate(args: argparse.Namespace) -> None:
    print(json.dumps(config.as_dict(config.load(args.params)), indent=2))


def _data(args: argparse.Namespace) -> None:
    from benchmark.data import stage

    result = stage.run(config.load(args.params))
    print(json.dumps(result.metrics, indent=2))


COMMANDS = {"validate": _validate, "data": _data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facebench", description="Reproducible face-recognition benchmark")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in COMMANDS.items():
        cmd = sub.add_parser(name, help=(func.__doc__ or "").strip() or None)
        cmd.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ConfigError, DataError) as err:
        print(f"facebench {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
