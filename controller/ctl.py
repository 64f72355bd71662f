"""`mp-ctl`: the operator CLI for flows, ranks, QUIC mappings, proxy sessions, scheduling
mode, statistics and tables.

It talks to the controller's northbound API with a token (`--token` or $MP_CTL_TOKEN),
over TLS with `--tls-ca` (and `--tls-cert`/`--tls-key` for mutual TLS; or
$MP_CTL_TLS_CA etc.); it sends the token in clear only to a controller on this
host's loopback. Readable tables by default, `--json` for scripts; a one-line error
and exit code 1 (refused or unreachable) or 2 (bad arguments) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from clikit import tls as tls_mod
from clikit.args import parse_host_port
from controller.config import SCHED_MODES
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mp-ctl",
        description="Operator CLI of the MASQUE/PIFO controller: fast-path flows, stream ranks, "
        "the switch's scheduling mode, counters and tables.",
        epilog="examples: mp-ctl flow add --client 10.0.1.10:50000 --target 10.0.3.10:443; "
        "mp-ctl rank set --src 10.0.1.10 --dst 10.0.3.10 --dscp 10 --priority 1; "
        "mp-ctl sched set sppifo; mp-ctl stats --json")
    parser.add_argument("--controller", default=os.environ.get("MP_CTL_CONTROLLER",
                                                               "127.0.0.1:50060"),
                        help="northbound API address (default 127.0.0.1:50060, "
                        "$MP_CTL_CONTROLLER)")
    parser.add_argument("--token", default=os.environ.get("MP_CTL_TOKEN", ""),
                        help="client token (default $MP_CTL_TOKEN)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    tls_mod.add_arguments(parser, server=False, env="MP_CTL", what="to the controller")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    flow = sub.add_parser("flow", help="add, delete or list fast-path flows")
    fsub = flow.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = fsub.add_parser("add", help="open a fast-path flow")
    add.add_argument("--client", required=True, metavar="ADDR:PORT",
                     help="client address and UDP source port")
    add.add_argument("--target", required=True, metavar="ADDR:PORT")
    delete = fsub.add_parser("del", help="close a flow")
    delete.add_argument("flow_id", type=int)
    fsub.add_parser("list", help="list flows")

    rank = sub.add_parser("rank", help="set, delete or list per-stream ranks")
    rsub = rank.add_subparsers(dest="action", required=True, metavar="ACTION")
    rset = rsub.add_parser("set", help="rank a stream (flow_rank entry)")
    rdel = rsub.add_parser("del", help="remove a stream's rank")
    for p in (rset, rdel):
        p.add_argument("--src", required=True, help="source IPv4")
        p.add_argument("--dst", required=True, help="destination IPv4")
        p.add_argument("--sport", type=int, default=0, help="source port (0: any)")
        p.add_argument("--dport", type=int, default=0, help="destination port (0: any)")
        p.add_argument("--dscp", type=int, default=-1, help="DSCP tag (-1: any)")
    urgency = rset.add_mutually_exclusive_group(required=True)
    urgency.add_argument("--priority", type=int, help="level, 0 most urgent (rank = 1024 x p)")
    urgency.add_argument("--deadline-ms", type=int, help="rank = deadline in ms")
    urgency.add_argument("--class", dest="traffic_class", help="a class of the config")
    rsub.add_parser("list", help="list stream ranks")

    sched = sub.add_parser("sched", help="set the scheduling mode")
    ssub = sched.add_subparsers(dest="action", required=True, metavar="ACTION")
    sset = ssub.add_parser("set", help="fifo | strict | sppifo | aifo | packs")
    sset.add_argument("mode", choices=list(SCHED_MODES))
    sset.add_argument("--burst-pct", type=int, metavar="K",
                      help="AIFO/PACKS: k, the burst allowance, in percent (0..99; default: "
                      "keep, 10 at first)")
    sset.add_argument("--queue-depth", type=int, metavar="N",
                      help="AIFO/PACKS: packets per priority queue, the switch's queue depth "
                      "(default: keep, 64 at first)")

    quic = sub.add_parser("quic", help="forwarded-mode QUIC mappings (installed by proxies)")
    qsub = quic.add_subparsers(dest="action", required=True, metavar="ACTION")
    qsub.add_parser("list", help="list the connection-ID mappings the switch forwards by")

    sub.add_parser("sessions", help="open proxy sessions and what each holds (the "
                   "controller removes it when the proxy goes away)")
    sub.add_parser("stats", help="flow and queue counters, SP-PIFO bounds, drops by reason")
    table = sub.add_parser("table", help="dump a P4 table")
    tsub = table.add_subparsers(dest="action", required=True, metavar="ACTION")
    dump = tsub.add_parser("dump", help="every entry of table NAME")
    dump.add_argument("name", help="e.g. fastpath_decap, flow_rank, ipv4_lpm")
    return parser


def _addr_port(parser: argparse.ArgumentParser, text: str, what: str) -> tuple[str, int]:
    try:
        return parse_host_port(text)
    except ValueError as exc:
        parser.error(f"{what}: {exc}")
    raise AssertionError("unreachable")


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser,
        stub: nb_grpc.ControllerStub) -> tuple[Any, str]:
    """(message for --json, text for people) of one command."""
    meta = (("authorization", f"Bearer {args.token}"),)
    kw = {"metadata": meta, "timeout": args.timeout}
    if args.command == "flow":
        if args.action == "add":
            caddr, cport = _addr_port(parser, args.client, "--client")
            taddr, tport = _addr_port(parser, args.target, "--target")
            f = stub.OpenFlow(nb.OpenFlowRequest(client_addr=caddr, client_port=cport,
                                                 target_addr=taddr, target_port=tport), **kw)
            return f, (f"flow {f.flow_id}: shims from {f.client_addr}:{f.client_port} to "
                       f"{f.fastpath_addr}:{f.fastpath_port}; target sees "
                       f"proxy port {f.proxy_port}")
        if args.action == "del":
            stub.CloseFlow(nb.FlowRef(flow_id=args.flow_id), **kw)
            return nb.Empty(), f"flow {args.flow_id} closed"
        flows = stub.ListFlows(nb.Empty(), **kw)
        return flows, _table([[f.flow_id, f.client, f"{f.client_addr}:{f.client_port}",
                               f"{f.target_addr}:{f.target_port}", f.proxy_port]
                              for f in flows.flows],
                             ["flow", "client", "client", "target", "proxy port"])
    if args.command == "rank":
        if args.action == "list":
            streams = stub.ListStreams(nb.Empty(), **kw)
            return streams, _table([[s.client, s.key.src_addr, s.key.dst_addr,
                                     s.key.src_port or "*", s.key.dst_port or "*",
                                     "*" if s.key.dscp < 0 else s.key.dscp, s.rank]
                                    for s in streams.streams],
                                   ["client", "src", "dst", "sport", "dport", "dscp", "rank"])
        key = nb.StreamKey(src_addr=args.src, dst_addr=args.dst, src_port=args.sport,
                           dst_port=args.dport, dscp=args.dscp)
        if args.action == "del":
            stub.RemoveStream(key, **kw)
            return nb.Empty(), "rank removed"
        request = nb.Stream(key=key)
        if args.priority is not None:
            request.priority = args.priority
        elif args.deadline_ms is not None:
            request.deadline_ms = args.deadline_ms
        else:
            request.traffic_class = args.traffic_class
        s = stub.RegisterStream(request, **kw)
        return s, f"rank {s.rank}" + (" (raised to the class cap)" if s.clamped else "")
    if args.command == "quic":
        found = stub.ListQuicMappings(nb.Empty(), **kw)
        return found, _table([[m.client, m.tunnel, m.direction,
                               f"{m.src_addr}:{m.src_port}", f"{m.dst_addr}:{m.dst_port}",
                               m.dcid.hex(), f"{m.out_src_addr}:{m.out_src_port}",
                               f"{m.out_dst_addr}:{m.out_dst_port}", m.new_dcid.hex(), m.rank]
                              for m in found.mappings],
                             ["proxy", "tunnel", "direction", "from", "to", "dcid", "out from",
                              "out to", "new dcid", "rank"])
    if args.command == "sessions":
        sessions = stub.ListSessions(nb.Empty(), **kw)
        return sessions, _table([[s.session_id, s.client, f"{s.opened_seconds_ago:.0f}",
                                  s.flows, s.streams, s.quic_mappings]
                                 for s in sessions.sessions],
                                ["session", "client", "open s", "flows", "ranks",
                                 "quic mappings"])
    if args.command == "sched":
        request = nb.SchedMode(mode=args.mode)
        if args.burst_pct is not None:
            request.burst_pct = args.burst_pct
        if args.queue_depth is not None:
            request.queue_depth = args.queue_depth
        stub.SetSchedMode(request, **kw)
        return nb.Empty(), f"scheduling mode: {args.mode}"
    if args.command == "table":
        dump = stub.DumpTable(nb.TableRef(name=args.name), **kw)
        return dump, "\n".join(e.text for e in dump.entries) or f"{args.name}: no entries"
    stats = stub.GetStats(nb.Empty(), **kw)
    parts = []
    for sw in stats.switches:
        parts.append(f"switch {sw.switch}: {'connected' if sw.connected else 'NOT connected'}, "
                     f"mode {sw.sched_mode}"
                     + (f" (k {sw.burst_pct}%, queue depth {sw.queue_depth})"
                        if sw.sched_mode in ("aifo", "packs") else "")
                     + f", last restore {sw.last_restore_seconds:.3f} s"
                     + f", {sw.write_updates} updates in {sw.write_requests} write requests")
        parts.append(_table([[c.name, c.index, c.label, c.packets, c.bytes]
                             for c in sw.counters], ["counter", "index", "what", "packets",
                                                     "bytes"]))
        parts.append("SP-PIFO bounds: " + (" ".join(map(str, sw.sppifo_bounds))
                                           or sw.note or "-"))
    return stats, "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is needed: --token T or $MP_CTL_TOKEN")
    try:
        tls = tls_mod.from_args(args, server=False)
        tls_mod.check_token_transport(args.controller, tls)
    except tls_mod.TlsError as exc:
        parser.error(str(exc))
    if not tls.enabled:
        print(f"mp-ctl: warning: plaintext connection to {args.controller} (no TLS)",
              file=sys.stderr)
    with tls_mod.secure_channel(args.controller, tls) as channel:
        try:
            message, text = run(args, parser, nb_grpc.ControllerStub(channel))
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            detail = exc.details()  # type: ignore[attr-defined]
            if code == grpc.StatusCode.UNAVAILABLE:
                how = "over TLS" if tls.enabled else "in plaintext (a TLS controller needs "\
                    "--tls-ca)"
                detail = f"controller at {args.controller} is not reachable {how}"
            print(f"mp-ctl: {code.name.lower()}: {detail}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=1))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
