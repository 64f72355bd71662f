"""`mp-proxy`: the CONNECT-UDP proxy agent (slow path; the switch fast path through the
controller when `--controller` and a token are given).

--certificate/--private-key are the QUIC server's; --tls-ca/--tls-cert/--tls-key are
TLS to the controller's northbound API, as mp-ctl's (the token is sent in clear
only to a controller on this host's loopback)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys

from clikit import run_until_signalled, setup_logging
from clikit import tls as tls_mod
from clikit.args import parse_host_port
from hostagent import congestion
from hostagent.masque.fastpath import ControllerFastPath
from hostagent.masque.proxy import FastPathHook, MasqueProxy, NoController, ProxySettings
from hostagent.masque.quic_proxy import DEFAULT_MAX_ACTIVE_CIDS, DEFAULT_MAX_ACTIVE_CIDS_SWITCH
from hostagent.masque.switch_forwarding import ControllerForwardingTable
from hostagent.masque.wire import DEFAULT_TEMPLATE_PATH, TemplateMatcher, WireError
from hostagent.schedulers import SCHEDULERS


def build_parser() -> argparse.ArgumentParser:
    """The command line of `mp-proxy`."""
    parser = argparse.ArgumentParser(
        prog="mp-proxy",
        description="HTTP/3 CONNECT-UDP proxy (RFC 9298). Relays UDP for clients as HTTP "
        "Datagrams or DATAGRAM capsules. A request may ask for the P4 switch's fast path "
        "(masque-fastpath: ?1): with --controller the proxy opens the flow through the "
        "controller's northbound API (the proxy is the controller's client, with an operator "
        "token); without it every tunnel stays on the slow path.",
    )
    parser.add_argument("--listen", default="0.0.0.0:4433", help="HOST:PORT to serve HTTP/3 on")
    parser.add_argument("--certificate", help="TLS certificate (PEM; default: self-signed)")
    parser.add_argument("--private-key", help="TLS private key (PEM; default: self-signed)")
    parser.add_argument("--allow", action="append", default=[], metavar="CIDR",
                        help="relay only to these networks (repeatable). Default: anything but "
                        "loopback, link-local, unspecified, multicast, reserved and the "
                        "proxy's own addresses")
    parser.add_argument("--max-tunnels", type=int, default=256, metavar="N",
                        help="open tunnels per client connection; more get 429 (default 256)")
    parser.add_argument("--idle-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="close a tunnel (and its socket) after this long without "
                        "traffic (default 120, the RFC 9298 minimum recommendation)")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE_PATH, metavar="PATH",
                        help=f"URI Template path served (default {DEFAULT_TEMPLATE_PATH})")
    parser.add_argument("--scheduler", default="rr", choices=list(SCHEDULERS),
                        help="stream scheduler of the outer connections (default rr)")
    congestion.add_argument(parser, "the outer connections")
    parser.add_argument("--no-datagrams", action="store_true",
                        help="do not offer HTTP Datagrams in QUIC DATAGRAM frames (every "
                        "tunnel then runs in stream mode)")
    parser.add_argument("--quic-forwarding", action="store_true",
                        help="offer forwarded mode of QUIC-aware proxying (draft-ietf-masque-"
                        "quic-proxy-06, identity transform) to requests that ask for it: "
                        "short-header packets of inner QUIC connections then bypass the "
                        "tunnel, forwarded by this proxy (default: off; connection IDs are "
                        "still acknowledged, without virtual IDs)")
    parser.add_argument("--no-switch-forwarding", action="store_true",
                        help="with --quic-forwarding and --controller: forward in this "
                        "proxy's software only, installing no mapping in the switch (the "
                        "controller still serves --fastpath requests)")
    parser.add_argument("--max-connection-ids", type=int, default=None,
                        metavar="N", help="connection-ID registrations a request may hold "
                        f"at once (at least 2; default {DEFAULT_MAX_ACTIVE_CIDS}, or "
                        f"{DEFAULT_MAX_ACTIVE_CIDS_SWITCH} when the switch forwards: "
                        "--quic-forwarding with --controller, each registration then being "
                        "a switch entry and a controller call)")
    parser.add_argument("--controller", metavar="HOST:PORT",
                        help="the controller's northbound API: grant fast-path requests through "
                        "it (default: no controller, every tunnel on the slow path)")
    parser.add_argument("--controller-token",
                        default=os.environ.get("MP_PROXY_CONTROLLER_TOKEN", ""),
                        help="the proxy's token at the controller; must be an operator's, since "
                        "the proxy opens flows for its clients' addresses "
                        "(default $MP_PROXY_CONTROLLER_TOKEN)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    tls_mod.add_arguments(parser, server=False, env="MP_PROXY",
                          what="to the controller's northbound API")
    return parser


def default_max_connection_ids(args: argparse.Namespace) -> int:
    """--max-connection-ids when not given: fewer when every registration costs a switch
    entry and a controller call."""
    switch = args.quic_forwarding and args.controller and not args.no_switch_forwarding
    return DEFAULT_MAX_ACTIVE_CIDS_SWITCH if switch else DEFAULT_MAX_ACTIVE_CIDS


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; print the counters on the way out."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        host, port = parse_host_port(args.listen)
        for cidr in args.allow:
            ipaddress.ip_network(cidr, strict=False)
        TemplateMatcher(args.template)
    except (ValueError, WireError) as exc:
        parser.error(str(exc))
    if args.max_tunnels < 1:
        parser.error("--max-tunnels must be >= 1")
    if args.idle_timeout <= 0:
        parser.error("--idle-timeout must be > 0")
    if args.max_connection_ids is None:
        args.max_connection_ids = default_max_connection_ids(args)
    if args.max_connection_ids < 2:
        parser.error("--max-connection-ids must be >= 2 (the draft's initial allowance)")
    if args.no_switch_forwarding and not args.quic_forwarding:
        parser.error("--no-switch-forwarding goes with --quic-forwarding")
    if args.controller:
        try:
            parse_host_port(args.controller)
        except ValueError as exc:
            parser.error(f"--controller: {exc}")
        if not args.controller_token:
            parser.error("--controller needs a token: --controller-token T or "
                         "$MP_PROXY_CONTROLLER_TOKEN")
    try:
        tls = tls_mod.from_args(args, server=False)
        if args.controller:
            tls_mod.check_token_transport(args.controller, tls)
    except tls_mod.TlsError as exc:
        parser.error(str(exc))
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    if args.controller and not tls.enabled:
        tls_mod.warn_plaintext(logging.getLogger("mp-proxy"), "the controller's northbound API",
                               args.controller)
    settings = ProxySettings(allow=args.allow, max_tunnels=args.max_tunnels,
                             idle_timeout=args.idle_timeout, template_path=args.template,
                             scheduler=args.scheduler, datagrams=not args.no_datagrams,
                             quic_forwarding=args.quic_forwarding,
                             max_connection_ids=args.max_connection_ids,
                             congestion_control=args.congestion_control)

    async def run(stop: asyncio.Event) -> None:
        hook: FastPathHook = (ControllerFastPath(args.controller, args.controller_token,
                                                 tls=tls)
                              if args.controller else NoController())
        # with a controller, forwarded-mode rules go to the switch too (unless told not to)
        switch_table = (ControllerForwardingTable(hook)
                        if args.quic_forwarding and isinstance(hook, ControllerFastPath)
                        and not args.no_switch_forwarding else None)
        proxy = MasqueProxy(settings, fastpath=hook,
                            forwarding_tables=[switch_table] if switch_table else [])
        if isinstance(hook, ControllerFastPath):
            # what the proxy installs is the session's: the controller removes it if the
            # proxy dies without doing so
            await hook.open_session()
        await proxy.start(host, port, args.certificate, args.private_key)
        try:
            await stop.wait()
        finally:
            await proxy.close()
            logging.getLogger("mp-proxy").info(
                "counters: %s; refused by status: %s%s%s", proxy.stats, proxy.refusals,
                f"; fast path: {hook.stats}" if isinstance(hook, ControllerFastPath) else "",
                f"; switch forwarding: {switch_table.stats}" if switch_table else "")

    run_until_signalled(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
