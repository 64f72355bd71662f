"""`mp-switch`: the built-in software target, started like `simple_switch_grpc`."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """The command line, flag for flag the one of BMv2's simple_switch_grpc."""
    parser = argparse.ArgumentParser(
        prog="mp-switch",
        description=(
            "Built-in software P4 target. Runs a BMv2 JSON compiled by p4c (v1model), "
            "attaches to interfaces with AF_PACKET and serves P4Runtime, taking the same "
            "flags as BMv2's simple_switch_grpc so one launcher starts either target."
        ),
        epilog="example: mp-switch -i 1@veth1 -i 2@veth2 --priority-queues 8 "
        "--grpc-server-addr 127.0.0.1:9559 --no-p4",
    )
    parser.add_argument("json", nargs="?", help="BMv2 JSON to load at start (or use --no-p4)")
    parser.add_argument("-i", "--interface", action="append", default=[], metavar="PORT@IFNAME",
                        help="attach switch port PORT to interface IFNAME (repeatable)")
    parser.add_argument("--no-p4", action="store_true",
                        help="start without a program; wait for SetForwardingPipelineConfig")
    parser.add_argument("--device-id", type=int, default=0, help="P4Runtime device id (default 0)")
    parser.add_argument("--grpc-server-addr", default="0.0.0.0:9559",
                        help="P4Runtime listen address (default 0.0.0.0:9559)")
    parser.add_argument("--cpu-port", type=int, default=None,
                        help="port number used for PacketIn/PacketOut")
    parser.add_argument("--priority-queues", type=int, default=1,
                        help="strict-priority egress queues per port (default 1, max 8)")
    parser.add_argument("--log-level", default="info",
                        choices=["trace", "debug", "info", "warn", "error", "off"])
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mp-switch: the software target is not implemented yet (issue 4)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
