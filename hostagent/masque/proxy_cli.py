"""`mp-proxy`: the CONNECT-UDP proxy agent (slow path, fast-path hand-off)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-proxy",
        description="HTTP/3 CONNECT-UDP proxy (RFC 9298). Relays UDP for clients as HTTP "
        "Datagrams or DATAGRAM capsules, and hands flows to the P4 switch's fast path "
        "through the controller when a client asks for it.",
    )
    parser.add_argument("--listen", default="0.0.0.0:4433", help="HOST:PORT to serve HTTP/3 on")
    parser.add_argument("--certificate", help="TLS certificate (PEM)")
    parser.add_argument("--private-key", help="TLS private key (PEM)")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mp-proxy: not implemented yet (issue 7)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
