"""The MASQUE proxy topology in Mininet: client, proxy and targets on a P4 switch, fast path on.

    sudo .venv/bin/python topologies/masque_proxy.py [--cli] [--target soft|bmv2] \\
        [--targets N] [--link "rate=5mbit,delay=50ms,loss=1%"] [--link-mode auto|netem|userspace] \\
        [--bottleneck 5mbit]
    sudo .venv/bin/python topologies/masque_proxy.py --cleanup

    client 10.0.1.10 --port 1--+                     +--port 3-- t1 10.0.3.10 (mp-target)
      (--link: emulated,       |   P4 switch mps1     |   ...
       mpe1 in between where   |   fast path          +--port N+2-- tN 10.0.N+2.10
       there is no netem)      |   10.0.2.1:4434
    proxy 10.0.2.10 --port 2---+
      (mp-proxy --controller)
      | proxy-mgmt 192.168.252.2/30 -- mpmn-mgmt 192.168.252.1/30 (root namespace)
    root namespace: mp-controller (northbound 192.168.252.1, P4Runtime 127.0.0.1), this script

Without --cli it runs one demonstration (mp-client with --fastpath from the client
through the switch to t1, echoing a few messages) and prints what happened; with
--cli it drops into Mininet's CLI. Everything it started (Mininet's nodes and links,
the switch, the controller, the proxy, the targets, link emulators) is removed on
exit, on Ctrl-C, on SIGTERM and after an error; `--cleanup` removes what a crashed
run left behind, using the PIDs it recorded in STATE_FILE.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `python topologies/masque_proxy.py`
    sys.path.insert(0, str(REPO))

from clikit import run_guarded  # noqa: E402 - needs the path above
from topologies.masque_plan import (  # noqa: E402
    MAX_TARGETS,
    OPS_TOKEN,
    QUIC_PORT,
    UDP_PORT,
    plan_hosts,
)
from topologies.masque_topology import PROG, DemoResult, MasqueTopology  # noqa: E402
from topologies.script_args import (  # noqa: E402
    add_link_arguments,
    parse_bottleneck,
    parse_links,
    preflight,
)


def print_demo(topo: MasqueTopology, result: DemoResult) -> None:
    """The demonstration's report for people."""
    print(f"\n*** Demo: mp-client --fastpath on client ({topo.client.ip}) through mp-proxy "
          f"({topo.proxy.ip}:{QUIC_PORT}) to mp-target on t1 (10.0.3.10:{QUIC_PORT})")
    for line in result.lines:
        print(f"    {line}")
    print(f"fast path granted: {'yes, ' + result.fastpath if result.granted else 'NO'}")
    if result.rtts_ms:
        print("inner QUIC echo RTTs (ms): " + " ".join(f"{v:.1f}" for v in result.rtts_ms))
    print(f"client shims: sent {result.shims_sent}, received {result.shims_received}")
    print(f"switch direct counters, last read while the flow was open ({result.flow_reads} "
          f"reads, 5 ms apart): decap_counter {result.decap[0]} pkts / {result.decap[1]} B, "
          f"encap_counter {result.encap[0]} pkts / {result.encap[1]} B")
    for sw in result.stats.get("switches", []):
        rows = [c for c in sw.get("counters", []) if int(c.get("packets", 0))]
        print(f"mp-ctl stats: switch {sw.get('switch')}, mode {sw.get('sched_mode')}; "
              "non-zero counters:")
        for c in rows:
            print(f"    {c.get('name')}[{c.get('index', 0)}] {c.get('label', '')}: "
                  f"{c.get('packets')} pkts, {c.get('bytes', 0)} B")
        print("    SP-PIFO bounds: " + (" ".join(map(str, sw.get("sppifo_bounds", [])))
                                         or sw.get("note", "-")))


def cli_help(topo: MasqueTopology) -> str:
    """What to try at Mininet's CLI."""
    t1 = topo.hosts[2].ip
    return f"""
*** The MASQUE topology is up. Commands to try (mp-* are on PATH; mp-ctl knows the controller):
  pingall
  client ping -c 3 {t1}
  client mp-client {topo.proxy.ip}:{QUIC_PORT} --target {t1}:{QUIC_PORT} --fastpath --count 5
  client mp-client {topo.proxy.ip}:{QUIC_PORT} --target {t1}:{UDP_PORT} --protocol udp --fastpath
  client mp-client {topo.proxy.ip}:{QUIC_PORT} --target {t1}:{QUIC_PORT}   (via the proxy)
  client python -m hostagent.masque.paced --proxy {topo.proxy.ip}:{QUIC_PORT} \
--target {t1}:{UDP_PORT} --fastpath --flow high,0,0.4mbit,200 --flow bulk,10,6mbit,1200 --seconds 3
     (paced tunnels with priorities; with --bottleneck the high one keeps its RTT)
  sh mp-ctl stats
  sh mp-ctl flow list
  sh mp-ctl rank list
  sh mp-ctl table dump ipv4_lpm
  sh mp-ctl sched set fifo
  links / net / dump
  exit   (or Ctrl-D: everything is stopped and removed)
controller northbound {topo.northbound} (token {OPS_TOKEN}); P4Runtime {topo.switch.grpc_addr};
switch log {topo.workdir / 'switch.log'}
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="The MASQUE proxy topology in Mininet: client, proxy and "
        "targets on a P4 switch with the fast path; a demonstration, or Mininet's CLI.",
        epilog="run as root with the project's venv: sudo .venv/bin/python "
        "topologies/masque_proxy.py --cli")
    parser.add_argument("--cli", action="store_true",
                        help="bring everything up and open Mininet's CLI instead of the demo")
    parser.add_argument("--target", choices=["soft", "bmv2"], default="soft",
                        help="P4 target: soft (the built-in target, default) or bmv2")
    parser.add_argument("--targets", type=int, default=1, metavar="N",
                        help=f"target hosts t1..tN (1..{MAX_TARGETS}, default 1)")
    add_link_arguments(parser, None)
    parser.add_argument("--bottleneck", metavar="RATE",
                        help="shape the switch's ports towards the targets, e.g. 5mbit, so "
                        "its queues and scheduling mode decide who waits (built-in target "
                        "only; default: unshaped)")
    parser.add_argument("--count", type=int, default=5, help="demo echo exchanges (5)")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove leftovers of a crashed run (ours, then Mininet's mn -c)")
    parser.add_argument("-v", "--verbose", action="store_true", help="Mininet's info log")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, check the host, run the demo or the CLI; clean up whatever happens."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.targets <= MAX_TARGETS:
        parser.error(f"--targets must be 1..{MAX_TARGETS}, got {args.targets}")
    host_links = parse_links(parser, args, [h.name for h in plan_hosts(args.targets)])
    bottleneck = parse_bottleneck(parser, args.bottleneck, args.target)
    if args.count < 1:
        parser.error("--count must be >= 1")
    code = preflight(PROG, args, bool(host_links), "topologies/masque_proxy.py")
    if code is not None:
        return code
    from mininet.cli import CLI

    topo = MasqueTopology(target=args.target, targets=args.targets,
                          host_links=host_links, link_mode=args.link_mode,
                          bottleneck_bps=bottleneck, lock_wait=0.0)

    def body() -> int:
        started = time.monotonic()
        topo.start()
        print(f"*** topology up in {time.monotonic() - started:.1f} s: {args.target} target, "
              f"hosts {', '.join(h.name for h in topo.hosts)}; {topo.describe_links()}"
              + (f"; ports to the targets shaped to {args.bottleneck}" if bottleneck else ""),
              flush=True)
        if args.cli:
            print(cli_help(topo), flush=True)
            CLI(topo.net)
            return 0
        lost = topo.ping_all()
        result = topo.demo(count=args.count)
        print_demo(topo, result)
        ok = lost == 0 and result.granted and result.exit_code == 0
        print(f"\n*** demo {'OK' if ok else 'FAILED'}: ping loss {lost:g}%, fast path "
              f"{'granted' if result.granted else 'not granted'}, mp-client exit "
              f"{result.exit_code}", flush=True)
        return 0 if ok else 1

    return run_guarded(PROG, body, topo.stop)


if __name__ == "__main__":
    sys.exit(main())
