"""`mp-client`: opens CONNECT-UDP tunnels and runs inner QUIC connections through them."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-client",
        description="CONNECT-UDP client: one outer HTTP/3 connection to the proxy, N tunnels "
        "over it, an inner QUIC connection through each, with an outer and an inner stream "
        "scheduler (nested priorities).",
    )
    parser.add_argument("proxy", nargs="?", help="proxy HOST:PORT")
    parser.add_argument("--target", action="append", default=[], metavar="HOST:PORT",
                        help="target to tunnel to (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mp-client: not implemented yet (issue 7)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
