"""`mp-controller`: the controller daemon that keeps the switches' state."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-controller",
        description=(
            "P4Runtime controller. Becomes primary on each configured switch, pushes the "
            "pipeline, installs the intended state kept in SQLite, re-installs it when a "
            "switch restarts, and serves the northbound API that end-host agents use to "
            "open fast-path flows and register stream priorities."
        ),
    )
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="controller config (TOML)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mp-controller: not implemented yet (issue 5)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
