"""`mp-ctl`: the operator CLI for flows, ranks, scheduling mode and statistics."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-ctl",
        description="Operator CLI of the MASQUE/PIFO controller: fast-path flows, stream ranks, "
        "the switch's scheduling mode, counters and tables.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("flow", help="add, delete or list fast-path flows")
    sub.add_parser("rank", help="set, delete or list per-stream ranks")
    sub.add_parser("sched", help="set the scheduling mode: fifo | strict | sppifo")
    sub.add_parser("stats", help="flow and queue counters, SP-PIFO bounds, drops by reason")
    sub.add_parser("table", help="dump a P4 table")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mp-ctl: not implemented yet (issue 5)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
