"""The switch entries that configuration and intended state stand for (finsy entities).

One function per kind of entry, shared by the controller and the dataplane
tests, so the table, field and action names of masque_pifo.p4 appear once.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import finsy as fy

from controller.config import ControllerConfig, FastPathConf, Route, StrictRange
from controller.intent import FlowIntent, QuicMappingIntent, StreamIntent
from p4src.pipeline import SchedMode

SCHED_MODE = {"fifo": SchedMode.FIFO, "strict": SchedMode.STRICT, "sppifo": SchedMode.SPPIFO,
              "aifo": SchedMode.AIFO, "packs": SchedMode.PACKS}


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def route(r: Route) -> fy.P4TableEntry:
    return fy.P4TableEntry("ipv4_lpm", match=fy.Match(dst_addr=r.prefix), action=fy.Action(
        "route", port=r.port, src_mac=mac(r.src_mac), dst_mac=mac(r.dst_mac)))


def fastpath_local(address: str) -> fy.P4TableEntry:
    return fy.P4TableEntry("fastpath_local", match=fy.Match(dst_addr=ip(address)),
                           action=fy.Action("fastpath_here"))


def fastpath_miss(fp: FastPathConf) -> fy.P4TableEntry:
    action = (fy.Action("to_cpu") if fp.miss == "cpu" else
              fy.Action("to_slow_path", port=fp.slow_path_port, dst_mac=mac(fp.slow_path_mac)))
    return fy.P4TableEntry("fastpath_miss", action=action, is_default_action=True)


def flow_entries(flow: FlowIntent, fp: FastPathConf) -> list[fy.P4TableEntry]:
    """The three entries of one fast-path flow: decap, flow id, encap."""
    return [
        fy.P4TableEntry(
            "fastpath_decap",
            match=fy.Match(client_addr=ip(flow.client_addr), client_port=flow.client_port,
                           flow_id=flow.flow_id),
            action=fy.Action("decap", proxy_addr=ip(fp.proxy_addr), proxy_port=flow.proxy_port,
                             target_addr=ip(flow.target_addr), target_port=flow.target_port)),
        fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=flow.flow_id),
                        action=fy.Action("flow_known")),
        fy.P4TableEntry(
            "fastpath_encap",
            match=fy.Match(target_addr=ip(flow.target_addr), target_port=flow.target_port,
                           proxy_port=flow.proxy_port),
            action=fy.Action("encap", flow_id=flow.flow_id, fastpath_addr=ip(fp.address),
                             client_addr=ip(flow.client_addr), client_port=flow.client_port)),
    ]


def quic_forward_entry(m: QuicMappingIntent) -> fy.P4TableEntry:
    """The quic_forward entry of one forwarded-mode mapping."""
    return fy.P4TableEntry(
        "quic_forward",
        match=fy.Match(src_addr=ip(m.src_addr), dst_addr=ip(m.dst_addr), src_port=m.src_port,
                       dst_port=m.dst_port, dcid=int.from_bytes(m.dcid, "big")),
        action=fy.Action("forward", src_addr=ip(m.out_src_addr), src_port=m.out_src_port,
                         dst_addr=ip(m.out_dst_addr), dst_port=m.out_dst_port,
                         dcid=int.from_bytes(m.new_dcid, "big"), rank=m.rank))


def quic_dcid_entry(dst_addr: str, dst_port: int, dcid: bytes) -> fy.P4TableEntry:
    """The quic_dcids entry that marks (address, port, DCID) as mapped, for any source."""
    return fy.P4TableEntry(
        "quic_dcids", match=fy.Match(dst_addr=ip(dst_addr), dst_port=dst_port,
                                     dcid=int.from_bytes(dcid, "big")),
        action=fy.Action("dcid_mapped"))


def quic_entries(mappings: list[QuicMappingIntent]) -> list[fy.P4TableEntry]:
    """Every mapping's quic_forward entry, and one quic_dcids entry per (dst, DCID)."""
    dcids = {(m.dst_addr, m.dst_port, m.dcid) for m in mappings}
    return ([quic_forward_entry(m) for m in mappings]
            + [quic_dcid_entry(*k) for k in sorted(dcids)])


def stream_entry(stream: StreamIntent) -> fy.P4TableEntry:
    """A flow_rank entry; more specific keys get a higher priority, so they win."""
    fields: dict[str, Any] = {"src_addr": ip(stream.src_addr), "dst_addr": ip(stream.dst_addr)}
    if stream.src_port:
        fields["src_port"] = stream.src_port
    if stream.dst_port:
        fields["dst_port"] = stream.dst_port
    if stream.dscp >= 0:
        fields["dscp"] = stream.dscp
    return fy.P4TableEntry("flow_rank", match=fy.Match(**fields),
                           action=fy.Action("set_rank", rank=stream.rank),
                           priority=len(fields))


def default_rank(rank: int) -> fy.P4TableEntry:
    return fy.P4TableEntry("flow_rank", action=fy.Action("set_rank", rank=rank),
                           is_default_action=True)


def sched_mode(mode: str, burst_pct: int = 10, queue_depth: int = 64) -> fy.P4TableEntry:
    """The scheduling mode, with AIFO's and PACKS's k (percent) and queue depth (packets)."""
    return fy.P4TableEntry("sched_mode", action=fy.Action(
        "set_mode", mode=int(SCHED_MODE[mode]), burst_pct=burst_pct, queue_depth=queue_depth),
        is_default_action=True)


def strict_range(r: StrictRange) -> fy.P4TableEntry:
    return fy.P4TableEntry("rank_to_queue", match=fy.Match(rank=(r.low, r.high)),
                           action=fy.Action("set_queue", queue=r.queue), priority=1)


def base_entries(config: ControllerConfig, mode: str, rank: int, burst_pct: int = 10,
                 queue_depth: int = 64) -> tuple[list, list]:
    """(entries to insert, default entries to modify) that do not depend on clients."""
    inserts = [route(r) for r in config.routes] + [fastpath_local(config.fastpath.address)]
    inserts += [strict_range(r) for r in config.strict]
    defaults = [fastpath_miss(config.fastpath), sched_mode(mode, burst_pct, queue_depth),
                default_rank(rank)]
    return inserts, defaults

