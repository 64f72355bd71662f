"""Command-line pieces every script on MasqueTopology shares (masque_proxy.py and the LLM
serving experiment): the link arguments and their parsing, the bottleneck, and the
preflight checks before a topology starts."""

from __future__ import annotations

import argparse
import sys

from netlab import capabilities
from netlab.linkemu import LinkParams, netem_unavailable_reason, parse_rate, parse_spec
from topologies.masque_topology import STATE_FILE, cleanup_leftovers


def add_link_arguments(parser: argparse.ArgumentParser, client_default: str | None) -> None:
    """--link (the client's access link), --host-link (any host's) and --link-mode."""
    default = ("a plain link" if client_default is None
               else f"{client_default!r}; 'none': a plain link".replace("%", "%%"))
    parser.add_argument("--link", metavar="SPEC", default=client_default,
                        help="impair the client's access link, both directions, e.g. "
                        f'"rate=5mbit,delay=50ms,loss=1%%" (default: {default})')
    parser.add_argument("--host-link", metavar="HOST:SPEC", action="append", default=[],
                        help="impair the access link of HOST (client, proxy, t1..tN), both "
                        'directions, e.g. "t1:rate=10mbit,delay=20ms"; repeatable')
    parser.add_argument("--link-mode", choices=["auto", "netem", "userspace"], default="auto",
                        help="how impaired links are emulated: netem (Mininet TCLink "
                        "parameters), userspace (an emulator node per link), auto: netem "
                        "where the kernel has it")


def parse_links(parser: argparse.ArgumentParser, args: argparse.Namespace,
                hosts: list[str]) -> dict[str, LinkParams]:
    """The impaired access links by host name: the client's (--link) and any host's
    (--host-link), checked against the topology's `hosts`; a parser error (exit 2) on a
    bad one. For `MasqueTopology(host_links=...)`."""
    host_links: dict[str, LinkParams] = {}
    if args.link and args.link != "none":
        try:
            host_links["client"] = parse_spec(args.link)
        except ValueError as exc:
            parser.error(f"--link: {exc}")
    for item in args.host_link:
        host, sep, spec = item.partition(":")
        if not sep or not host or not spec:
            parser.error(f"--host-link: expected HOST:SPEC, e.g. t1:rate=10mbit, got {item!r}")
        if host not in hosts:
            parser.error(f"--host-link: no host {host!r} (hosts: {', '.join(hosts)})")
        if host in host_links:
            parser.error(f"--host-link: the link of {host} is given twice")
        try:
            host_links[host] = parse_spec(spec)
        except ValueError as exc:
            parser.error(f"--host-link {host}: {exc}")
    return host_links


def parse_bottleneck(parser: argparse.ArgumentParser, value: str | None,
                     target: str) -> int | None:
    """--bottleneck in bits/s (None: unshaped); a parser error (exit 2) when it is not a
    rate or the target has no port shaper."""
    if not value:
        return None
    try:
        rate = parse_rate(value)
    except ValueError as exc:
        parser.error(f"--bottleneck: {exc}")
    if not rate:
        parser.error("--bottleneck: give a rate, e.g. 5mbit")
    if target != "soft":
        parser.error("--bottleneck needs --target soft: BMv2 has no port-level shaper")
    return rate


def preflight(prog: str, args: argparse.Namespace, impaired: bool,
              script: str) -> int | None:
    """What every script on MasqueTopology checks before it starts one: root, Mininet,
    netem where `--link-mode netem` asks for it, BMv2 for `--target bmv2`, the project's
    venv. Then `--cleanup` (done here, exit 0), leftovers of a crashed run removed, and
    Mininet's log level from `-v`. An exit code to stop with (the reason printed in one
    line), or None to go on."""
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"{prog}: {cap.detail}", file=sys.stderr)
            return 1
    if impaired and args.link_mode == "netem":
        reason = netem_unavailable_reason()
        if reason is not None:
            print(f"{prog}: --link-mode netem: netem does not work here ({reason}); "
                  "use --link-mode userspace or auto", file=sys.stderr)
            return 1
    if args.target == "bmv2" and not capabilities.bmv2().available:
        print(f"{prog}: --target bmv2: {capabilities.bmv2().detail}", file=sys.stderr)
        return 1
    try:
        import finsy  # noqa: F401 - the project's dependencies, from its venv
    except ModuleNotFoundError:
        print(f"{prog}: the project's packages are missing: run it with the venv's python "
              f"(sudo .venv/bin/python {script}; `make test` creates .venv)", file=sys.stderr)
        return 1
    try:
        if args.cleanup:
            for line in cleanup_leftovers():
                print(f"{prog}: {line}")
            return 0
        if STATE_FILE.exists():
            leftovers = cleanup_leftovers(mininet_too=False)
            if leftovers:
                print(f"{prog}: removed leftovers of an earlier run: " + "; ".join(leftovers))
    except RuntimeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    from mininet.log import setLogLevel

    setLogLevel("info" if args.verbose else "output")
    return None
