"""The network the dataplane tests build: hosts on ports 1-4, addresses, and its
P4Runtime entries, made by the controller's own entity builders (controller/entities.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import finsy as fy

from controller import entities
from controller.config import FastPathConf, Route
from controller.intent import FlowIntent, QuicMappingIntent
from p4src.pipeline import SchedMode

CLIENT, PROXY, TARGET, OTHER = "10.0.1.10", "10.0.2.10", "10.0.3.10", "10.0.4.10"
FASTPATH_ADDR = "10.0.2.1"  # the switch's fast-path endpoint, in the proxy's subnet
HOST_MAC = {1: "02:00:00:00:01:0a", 2: "02:00:00:00:02:0a", 3: "02:00:00:00:03:0a",
            4: "02:00:00:00:04:0a"}
SWITCH_MAC = {1: "02:aa:00:00:00:01", 2: "02:aa:00:00:00:02", 3: "02:aa:00:00:00:03",
              4: "02:aa:00:00:00:04"}
SUBNET = {1: "10.0.1.0/24", 2: "10.0.2.0/24", 3: "10.0.3.0/24", 4: "10.0.4.0/24"}


FASTPATH = FastPathConf(FASTPATH_ADDR, PROXY, slow_path_port=2, slow_path_mac=HOST_MAC[2])


def routes() -> list[Any]:
    return [+entities.route(Route(SUBNET[p], p, SWITCH_MAC[p], HOST_MAC[p])) for p in SUBNET]


def fastpath_base(miss_to_cpu: bool = False) -> list[Any]:
    miss = replace(FASTPATH, miss="cpu") if miss_to_cpu else FASTPATH
    return [+entities.fastpath_local(FASTPATH_ADDR), ~entities.fastpath_miss(miss)]


def flow(flow_id: int, client_port: int, proxy_port: int, target_port: int,
         client: str = CLIENT, target: str = TARGET) -> list[Any]:
    """The three entries of one fast-path flow."""
    intent = FlowIntent(flow_id, "test", client, client_port, target, target_port, proxy_port)
    return [+e for e in entities.flow_entries(intent, FASTPATH)]


def sched_mode(mode: SchedMode, burst_pct: int = 10, queue_depth: int = 64) -> Any:
    return ~entities.sched_mode(mode.name.lower(), burst_pct, queue_depth)


def quic_mapping(src: tuple[str, int], dst: tuple[str, int], dcid: bytes,
                 out_src: tuple[str, int], out_dst: tuple[str, int], new_dcid: bytes,
                 rank: int = 0, direction: str = "to_target") -> list[Any]:
    """The entries of one forwarded-mode mapping (quic_forward and its quic_dcids mark)."""
    m = QuicMappingIntent("proxy", direction, *src, *dst, dcid, *out_src, *out_dst,
                          new_dcid, rank, "test")
    return [+e for e in entities.quic_entries([m])]


def default_rank(rank: int) -> Any:
    return ~entities.default_rank(rank)


def rank_by_dscp(dscp: int, rank: int) -> Any:
    """A flow_rank entry on the DSCP tag alone (any addresses and ports)."""
    return +fy.P4TableEntry("flow_rank", match=fy.Match(dscp=dscp),
                            action=fy.Action("set_rank", rank=rank), priority=10)
