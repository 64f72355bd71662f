"""The network the dataplane tests build: hosts on ports 1-4, addresses, and the
P4Runtime entries for routing and fast-path flows (finsy entities)."""

from __future__ import annotations

import ipaddress
from typing import Any

import finsy as fy

from bmv2.pipeline import SchedMode

CLIENT, PROXY, TARGET, OTHER = "10.0.1.10", "10.0.2.10", "10.0.3.10", "10.0.4.10"
FASTPATH_ADDR = "10.0.2.1"  # the switch's fast-path endpoint, in the proxy's subnet
HOST_MAC = {1: "02:00:00:00:01:0a", 2: "02:00:00:00:02:0a", 3: "02:00:00:00:03:0a",
            4: "02:00:00:00:04:0a"}
SWITCH_MAC = {1: "02:aa:00:00:00:01", 2: "02:aa:00:00:00:02", 3: "02:aa:00:00:00:03",
              4: "02:aa:00:00:00:04"}
SUBNET = {1: "10.0.1.0/24", 2: "10.0.2.0/24", 3: "10.0.3.0/24", 4: "10.0.4.0/24"}


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def routes() -> list[Any]:
    return [+fy.P4TableEntry(
        "ipv4_lpm", match=fy.Match(dst_addr=SUBNET[port]),
        action=fy.Action("route", port=port, src_mac=mac(SWITCH_MAC[port]),
                         dst_mac=mac(HOST_MAC[port])))
        for port in SUBNET]


def fastpath_base(miss_to_cpu: bool = False) -> list[Any]:
    miss = (fy.Action("to_cpu") if miss_to_cpu else
            fy.Action("to_slow_path", port=2, dst_mac=mac(HOST_MAC[2])))
    return [
        +fy.P4TableEntry("fastpath_local", match=fy.Match(dst_addr=ip(FASTPATH_ADDR)),
                         action=fy.Action("fastpath_here")),
        ~fy.P4TableEntry("fastpath_miss", action=miss, is_default_action=True),
    ]


def flow(flow_id: int, client_port: int, proxy_port: int, target_port: int,
         client: str = CLIENT, target: str = TARGET) -> list[Any]:
    """The three entries of one fast-path flow."""
    return [
        +fy.P4TableEntry(
            "fastpath_decap",
            match=fy.Match(client_addr=ip(client), client_port=client_port, flow_id=flow_id),
            action=fy.Action("decap", proxy_addr=ip(PROXY), proxy_port=proxy_port,
                             target_addr=ip(target), target_port=target_port)),
        +fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=flow_id),
                         action=fy.Action("flow_known")),
        +fy.P4TableEntry(
            "fastpath_encap",
            match=fy.Match(target_addr=ip(target), target_port=target_port,
                           proxy_port=proxy_port),
            action=fy.Action("encap", flow_id=flow_id, fastpath_addr=ip(FASTPATH_ADDR),
                             client_addr=ip(client), client_port=client_port)),
    ]


def sched_mode(mode: SchedMode) -> Any:
    return ~fy.P4TableEntry("sched_mode", action=fy.Action("set_mode", mode=int(mode)),
                            is_default_action=True)


def default_rank(rank: int) -> Any:
    return ~fy.P4TableEntry("flow_rank", action=fy.Action("set_rank", rank=rank),
                            is_default_action=True)


def rank_by_dscp(dscp: int, rank: int) -> Any:
    return +fy.P4TableEntry("flow_rank", match=fy.Match(dscp=dscp),
                            action=fy.Action("set_rank", rank=rank), priority=10)
