"""`mp-switch`: the built-in software target, started like `simple_switch_grpc`.

    mp-switch [options] (JSON | --no-p4) -- [--grpc-server-addr A] [--cpu-port N]
              [--priority-queues N]

Options before `--` are BMv2's general options, after it simple_switch_grpc's
target options, so `bmv2.launcher` builds one command line for both targets.
Extensions of this target (BMv2 has no equivalent): --queue-depth and
--port-rate PORT=BPS (a port-level shaper; see bmv2/softswitch/ports.py).

TLS for P4Runtime: simple_switch_grpc's target options (--grpc-server-ssl,
--grpc-server-cert, --grpc-server-key, --grpc-server-cacert,
--grpc-server-with-client-auth), or the project's --tls-cert/--tls-key/--tls-ca
(a CA requires client certificates signed by it). Without them P4Runtime is
plaintext, and a WARNING line says so.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from clikit import setup_logging, wait_until_signalled
from clikit.tls import TlsError, TlsFiles

LOG_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO,
              "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
              "off": logging.CRITICAL + 10}


def _port_binding(text: str) -> tuple[int, str]:
    number, sep, ifname = text.partition("@")
    if not sep or not ifname or not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected PORT@IFNAME, got {text!r}")
    return int(number), ifname


def _port_rate(text: str) -> tuple[int, int]:
    number, sep, rate = text.partition("=")
    if not sep or not number.isdigit() or not rate.isdigit() or int(rate) <= 0:
        raise argparse.ArgumentTypeError(f"expected PORT=BITS_PER_SECOND, got {text!r}")
    return int(number), int(rate)


def build_parser() -> argparse.ArgumentParser:
    """The general options (before `--`), flag for flag those of BMv2."""
    parser = argparse.ArgumentParser(
        prog="mp-switch",
        usage="mp-switch [options] (JSON | --no-p4) -- [target options]",
        description=(
            "Built-in software P4 target. Runs a BMv2 JSON compiled by p4c (v1model), "
            "attaches to interfaces with AF_PACKET and serves P4Runtime, taking the same "
            "flags as BMv2's simple_switch_grpc so one launcher starts either target."),
        epilog=("target options (after --): --grpc-server-addr HOST:PORT (default "
                "0.0.0.0:9559), --cpu-port N, --priority-queues N (1-8, default 1), "
                "--grpc-server-ssl --grpc-server-cert F --grpc-server-key F "
                "[--grpc-server-cacert F --grpc-server-with-client-auth] (as BMv2). "
                "example: mp-switch -i 1@veth1 -i 2@veth2 --no-p4 -- "
                "--grpc-server-addr 127.0.0.1:9559 --priority-queues 8"),
    )
    parser.add_argument("json", nargs="?", help="BMv2 JSON to load at start (or --no-p4)")
    parser.add_argument("-i", "--interface", action="append", default=[], type=_port_binding,
                        metavar="PORT@IFNAME", help="attach port PORT to IFNAME (repeatable)")
    parser.add_argument("--no-p4", action="store_true",
                        help="start without a program; wait for SetForwardingPipelineConfig")
    parser.add_argument("--device-id", type=int, default=0, help="P4Runtime device id (0)")
    parser.add_argument("-L", "--log-level", default="info", choices=list(LOG_LEVELS))
    parser.add_argument("--log-file", help="log to this file instead of stderr")
    parser.add_argument("--log-console", action="store_true", help="log to stderr (default)")
    parser.add_argument("--queue-depth", type=int, default=64,
                        help="packets per priority queue (default 64, as BMv2)")
    parser.add_argument("--port-rate", action="append", default=[], type=_port_rate,
                        metavar="PORT=BPS", help="shape PORT to BPS bits/s (repeatable)")
    tls = parser.add_argument_group("TLS (P4Runtime; as the controller's and mp-ctl's)")
    tls.add_argument("--tls-cert", metavar="FILE", help="server certificate (turns TLS on)")
    tls.add_argument("--tls-key", metavar="FILE", help="its private key")
    tls.add_argument("--tls-ca", metavar="FILE",
                     help="require client certificates signed by this CA (mutual TLS)")
    return parser


def build_target_parser() -> argparse.ArgumentParser:
    """simple_switch_grpc's target options (after `--`)."""
    parser = argparse.ArgumentParser(prog="mp-switch -- ", add_help=False)
    parser.add_argument("--grpc-server-addr", default="0.0.0.0:9559")
    parser.add_argument("--cpu-port", type=int, default=None)
    parser.add_argument("--priority-queues", type=int, default=1)
    parser.add_argument("--grpc-server-ssl", action="store_true")
    parser.add_argument("--grpc-server-cert")
    parser.add_argument("--grpc-server-key")
    parser.add_argument("--grpc-server-cacert")
    parser.add_argument("--grpc-server-with-client-auth", action="store_true")
    return parser


def server_tls(parser: argparse.ArgumentParser, args: argparse.Namespace,
               targs: argparse.Namespace) -> TlsFiles | None:
    """TLS from either spelling of the options; None for plaintext."""
    bmv2_style = targs.grpc_server_ssl
    if not bmv2_style and (targs.grpc_server_cert or targs.grpc_server_key
                           or targs.grpc_server_cacert or targs.grpc_server_with_client_auth):
        parser.error("--grpc-server-cert/-key/-cacert/--grpc-server-with-client-auth need "
                     "--grpc-server-ssl")
    if bmv2_style and (args.tls_cert or args.tls_key or args.tls_ca):
        parser.error("give TLS either as --tls-* or as BMv2's --grpc-server-* options")
    if bmv2_style:
        cert, key = targs.grpc_server_cert, targs.grpc_server_key
        if targs.grpc_server_with_client_auth and not targs.grpc_server_cacert:
            parser.error("--grpc-server-with-client-auth needs --grpc-server-cacert")
        ca = targs.grpc_server_cacert if targs.grpc_server_with_client_auth else None
    else:
        cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
        if not (cert or key or ca):
            return None
    try:
        return TlsFiles(Path(cert) if cert else None, Path(key) if key else None,
                        Path(ca) if ca else None).check(server=True)
    except TlsError as exc:
        parser.error(str(exc))
    raise AssertionError("unreachable")


def parse(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    parser = build_parser()
    if "--" in argv:
        cut = argv.index("--")
        general, target = argv[:cut], argv[cut + 1:]
    else:
        general, target = argv, []
    args = parser.parse_args(general)
    try:
        targs = build_target_parser().parse_args(target)
    except SystemExit:
        parser.error(f"bad target options after --: {' '.join(target)}")
    if bool(args.json) == args.no_p4:
        parser.error("give a BMv2 JSON or --no-p4 (one of them)")
    if not 1 <= targs.priority_queues <= 8:
        parser.error("--priority-queues must be between 1 and 8")
    if args.queue_depth < 1:
        parser.error("--queue-depth must be >= 1")
    ports = dict(args.interface)
    if len(ports) != len(args.interface):
        parser.error("a port number is given twice")
    unknown = [p for p, _ in args.port_rate if p not in ports]
    if unknown:
        parser.error(f"--port-rate for ports that are not attached: {unknown}")
    if args.json and not Path(args.json).is_file():
        parser.error(f"no such file: {args.json}")
    args.tls = server_tls(parser, args, targs)
    return args, targs


def main(argv: list[str] | None = None) -> int:
    args, targs = parse(sys.argv[1:] if argv is None else argv)
    setup_logging(LOG_LEVELS[args.log_level], filename=args.log_file)
    from bmv2.softswitch.switch import SoftSwitch

    switch = SoftSwitch(device_id=args.device_id, ports=dict(args.interface),
                        cpu_port=targs.cpu_port, priority_queues=targs.priority_queues,
                        queue_depth=args.queue_depth, rates=dict(args.port_rate))
    try:
        if args.json:
            switch.load_json(Path(args.json).read_bytes())
        switch.start(targs.grpc_server_addr,
                     args.tls.server_credentials() if args.tls is not None else None)
    except OSError as exc:
        print(f"mp-switch: {exc}", file=sys.stderr)
        return 1
    log = logging.getLogger("mp-switch")
    if args.tls is None:
        log.warning("P4Runtime on %s is plaintext (no TLS): anyone on the path can read and "
                    "change it; give --tls-cert/--tls-key/--tls-ca", targs.grpc_server_addr)
    log.info("serving P4Runtime on %s (%s); ports %s", targs.grpc_server_addr,
             "plaintext" if args.tls is None else args.tls.describe(),
             ", ".join(f"{n}@{i}" for n, i in sorted(dict(args.interface).items())) or "none")
    wait_until_signalled()
    switch.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
