"""`mp-target`: QUIC and plain UDP echo servers used as tunnel targets."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from clikit import run_until_signalled, setup_logging
from clikit.args import parse_host_port
from hostagent.masque.target import ECHO_ALPN, EchoTargets
from hostagent.schedulers import SCHEDULERS


def build_parser() -> argparse.ArgumentParser:
    """The command line of `mp-target`."""
    parser = argparse.ArgumentParser(
        prog="mp-target",
        description="Target servers for the experiments: a QUIC echo server (ALPN "
        f"{ECHO_ALPN!r}; every stream is echoed, scheduled) and a UDP echo server.",
    )
    parser.add_argument("--quic", metavar="HOST:PORT", help="serve QUIC echo on this address")
    parser.add_argument("--udp", metavar="HOST:PORT", help="serve UDP echo on this address")
    parser.add_argument("--scheduler", default="rr", choices=list(SCHEDULERS),
                        help="stream scheduler of the QUIC echo server (default rr)")
    parser.add_argument("--max-streams", type=int, metavar="N",
                        help="bidirectional streams a client may have open at once "
                        "(default: aioquic's 128)")
    parser.add_argument("--certificate", help="PEM certificate (default: self-signed)")
    parser.add_argument("--private-key", help="PEM key (default: self-signed)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the servers until SIGINT or SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.quic and not args.udp:
        parser.error("give --quic HOST:PORT, --udp HOST:PORT or both")
    if args.max_streams is not None and args.max_streams < 1:
        parser.error("--max-streams must be >= 1")
    try:
        quic = parse_host_port(args.quic) if args.quic else None
        udp = parse_host_port(args.udp) if args.udp else None
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)

    async def run(stop: asyncio.Event) -> None:
        targets = EchoTargets(args.scheduler, args.max_streams)
        try:
            if quic:
                await targets.start_quic(*quic, args.certificate, args.private_key)
            if udp:
                await targets.start_udp(*udp)
            logging.getLogger("mp-target").info("ready")
            await stop.wait()
        finally:
            targets.close()

    run_until_signalled(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
