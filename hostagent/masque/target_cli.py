"""`mp-target`: QUIC and plain UDP echo servers used as tunnel targets."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-target",
        description="Target servers for the experiments: a QUIC echo server and a UDP echo server.",
    )
    parser.add_argument("--quic", metavar="HOST:PORT", help="serve QUIC echo on this address")
    parser.add_argument("--udp", metavar="HOST:PORT", help="serve UDP echo on this address")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mp-target: not implemented yet (issue 7)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
