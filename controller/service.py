"""The controller's logic behind the northbound API: policy, intended state, switches.

Policy: every caller is a client of the config, named by its token. A client
may open flows and rank streams only for its own address; a rank is raised to
its class's `min_rank` (the most urgent it may ask for); unknown classes and
malformed flows are refused with a clear message; operators may do anything,
including the scheduling mode and table dumps. Every operation is idempotent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

import finsy as fy

from controller import entities
from controller.config import (
    SCHED_MODES,
    ClientConf,
    ConfigError,
    ControllerConfig,
    check_burst_pct,
    check_queue_depth,
)
from controller.intent import (
    FlowIntent,
    IntentError,
    IntentStore,
    QuicMappingIntent,
    StreamIntent,
)
from controller.sessions import ProxySession, SessionTable
from controller.switch_agent import SwitchAgent
from p4src.pipeline import NUM_QUEUES, RANK_MAX, VCID_BYTES, DropReason, MissCounter

log = logging.getLogger("mp-controller")
PRIORITY_STEP = 1024  # rank of priority level p = p * PRIORITY_STEP


@dataclass(frozen=True)
class RankRequest:
    """How a client states a stream's urgency: exactly one of the three."""

    priority: int | None = None
    deadline_ms: int | None = None
    traffic_class: str | None = None


class ControllerService:
    """Intended state + policy + the switches that must follow it."""

    def __init__(self, config: ControllerConfig, store: IntentStore) -> None:
        self.config = config
        self.store = store
        self.agents = [SwitchAgent(s, self.desired) for s in config.switches]
        self.sessions = SessionTable()
        #: set while the controller stops: sessions that end then keep what they made
        self.shutting_down = False

    # -- what the switches must hold ----------------------------------------------------------
    @property
    def sched_mode(self) -> str:
        return self.store.setting("sched_mode", self.config.sched_mode)

    @property
    def burst_pct(self) -> int:
        return int(self.store.setting("burst_pct", str(self.config.burst_pct)))

    @property
    def queue_depth(self) -> int:
        return int(self.store.setting("queue_depth", str(self.config.queue_depth)))

    def desired(self) -> tuple[list[Any], list[Any]]:
        inserts, defaults = entities.base_entries(self.config, self.sched_mode,
                                                  self.config.default_rank, self.burst_pct,
                                                  self.queue_depth)
        for flow in self.store.flows():
            inserts += entities.flow_entries(flow, self.config.fastpath)
        inserts += entities.quic_entries(self.store.quic_mappings())
        inserts += [entities.stream_entry(s) for s in self.store.streams()]
        return inserts, defaults

    async def _push(self, updates: list[Any]) -> None:
        await asyncio.gather(*(agent.write(updates) for agent in self.agents))

    # -- policy -------------------------------------------------------------------------------
    @staticmethod
    def _own_address(client: ClientConf, address: str, what: str) -> str:
        try:
            address = str(ipaddress.IPv4Address(address))
        except ValueError:
            raise IntentError("INVALID_ARGUMENT", f"{what}: {address!r} is not IPv4") from None
        if not client.operator and address != client.address:
            raise IntentError("PERMISSION_DENIED",
                              f"{what} {address} is not {client.name}'s address "
                              f"({client.address})")
        return address

    @staticmethod
    def _port(value: int, what: str, allow_zero: bool = False) -> int:
        if not (0 if allow_zero else 1) <= value <= 65535:
            raise IntentError("INVALID_ARGUMENT", f"{what} {value} outside "
                              f"{0 if allow_zero else 1}..65535")
        return value

    def rank_for(self, client: ClientConf, request: RankRequest) -> tuple[int, bool]:
        """The rank to install and whether the client's class cap raised it."""
        given = [x for x in (request.priority, request.deadline_ms, request.traffic_class)
                 if x is not None]
        if len(given) != 1:
            raise IntentError("INVALID_ARGUMENT",
                              "give exactly one of priority, deadline_ms, traffic_class")
        if request.traffic_class is not None:
            cls = self.config.classes.get(request.traffic_class)
            if cls is None:
                raise IntentError("INVALID_ARGUMENT",
                                  f"unknown traffic class {request.traffic_class!r}; known: "
                                  f"{', '.join(self.config.classes) or 'none'}")
            rank = cls.rank
        elif request.priority is not None:
            rank = min(request.priority * PRIORITY_STEP, RANK_MAX)
        else:
            rank = min(request.deadline_ms or 0, RANK_MAX)
        cap = self.config.classes[client.traffic_class].min_rank
        if not client.operator and rank < cap:
            return cap, True
        return rank, False

    # -- operations ---------------------------------------------------------------------------
    async def open_flow(self, client: ClientConf, client_addr: str, client_port: int,
                        target_addr: str, target_port: int,
                        session: ProxySession | None = None) -> FlowIntent:
        client_addr = self._own_address(client, client_addr, "client address")
        try:
            target_addr = str(ipaddress.IPv4Address(target_addr))
        except ValueError:
            raise IntentError("INVALID_ARGUMENT",
                              f"target address {target_addr!r} is not IPv4") from None
        flow = self.store.open_flow(client.name, client_addr,
                                    self._port(client_port, "client port"), target_addr,
                                    self._port(target_port, "target port"))
        self.sessions.track(session, "flow", flow.flow_id)
        await self._push([+e for e in entities.flow_entries(flow, self.config.fastpath)]
                         if not await self._installed(flow) else [])
        return flow

    async def _installed(self, flow: FlowIntent) -> bool:
        """True if the flow's entries are on every connected switch already (idempotence)."""
        entry = entities.flow_entries(flow, self.config.fastpath)[1]
        for agent in self.agents:
            if agent.connected.is_set():
                try:
                    if not await agent.read([entry]):
                        return False
                except ConnectionError:
                    continue
        return True

    async def close_flow(self, client: ClientConf, flow_id: int) -> None:
        flow = self.store.flow(flow_id)
        if flow is None:
            return
        if not client.operator and flow.client != client.name:
            raise IntentError("PERMISSION_DENIED", f"flow {flow_id} belongs to another client")
        self.store.close_flow(flow_id)
        self.sessions.forget("flow", flow_id)
        await self._push([-e for e in entities.flow_entries(flow, self.config.fastpath)])

    def list_flows(self, client: ClientConf) -> list[FlowIntent]:
        return [f for f in self.store.flows() if client.operator or f.client == client.name]

    def _stream_key(self, client: ClientConf, src: str, dst: str, sport: int, dport: int,
                    dscp: int) -> tuple[str, str, int, int, int]:
        src = self._own_address(client, src, "stream source")
        try:
            dst = str(ipaddress.IPv4Address(dst))
        except ValueError:
            raise IntentError("INVALID_ARGUMENT", f"stream destination {dst!r} is not IPv4"
                              ) from None
        if not -1 <= dscp <= 63:
            raise IntentError("INVALID_ARGUMENT", f"dscp {dscp} outside -1..63")
        return (src, dst, self._port(sport, "source port", True),
                self._port(dport, "destination port", True), dscp)

    async def register_stream(self, client: ClientConf, src: str, dst: str, sport: int,
                              dport: int, dscp: int, request: RankRequest,
                              session: ProxySession | None = None) -> tuple[StreamIntent, bool]:
        key = self._stream_key(client, src, dst, sport, dport, dscp)
        rank, clamped = self.rank_for(client, request)
        stream = StreamIntent(client.name, *key, rank)
        old = self.store.put_stream(stream)
        self.sessions.track(session, "stream", key)
        entry = entities.stream_entry(stream)
        if old is None:
            await self._push([+entry])
        elif old != stream:
            await self._push([~entry])
        return stream, clamped

    async def remove_stream(self, client: ClientConf, src: str, dst: str, sport: int,
                            dport: int, dscp: int) -> None:
        key = self._stream_key(client, src, dst, sport, dport, dscp)
        old = self.store.stream(key)
        if old is None:
            return
        if not client.operator and old.client != client.name:
            raise IntentError("PERMISSION_DENIED", "this stream belongs to another client")
        self.store.remove_stream(key)
        self.sessions.forget("stream", key)
        await self._push([-entities.stream_entry(old)])

    def list_streams(self, client: ClientConf) -> list[StreamIntent]:
        return [s for s in self.store.streams() if client.operator or s.client == client.name]

    async def set_sched_mode(self, client: ClientConf, mode: str, burst_pct: int | None = None,
                             queue_depth: int | None = None) -> None:
        """Set the mode, and AIFO's and PACKS's k and queue depth (None: keep them)."""
        self._operator(client)
        if mode not in SCHED_MODES:
            raise IntentError("INVALID_ARGUMENT",
                              f"unknown mode {mode!r}; choose one of {', '.join(SCHED_MODES)}")
        try:
            if burst_pct is not None:
                check_burst_pct(burst_pct, "burst_pct")
            if queue_depth is not None:
                check_queue_depth(queue_depth, "queue_depth")
        except ConfigError as exc:
            raise IntentError("INVALID_ARGUMENT", str(exc)) from None
        self.store.set_setting("sched_mode", mode)
        if burst_pct is not None:
            self.store.set_setting("burst_pct", str(burst_pct))
        if queue_depth is not None:
            self.store.set_setting("queue_depth", str(queue_depth))
        await self._push([~entities.sched_mode(mode, self.burst_pct, self.queue_depth)])

    # -- forwarded-mode QUIC mappings -----------------------------------------------------------
    def _check_quic_mapping(self, client: ClientConf, m: QuicMappingIntent) -> None:
        if not (client.proxy or client.operator):
            raise IntentError("PERMISSION_DENIED",
                              f"{client.name} is not a proxy: only proxies install QUIC mappings")
        if m.direction not in ("to_target", "to_client"):
            raise IntentError("INVALID_ARGUMENT",
                              f"direction {m.direction!r} is not to_target or to_client")
        for what, addr in (("src_addr", m.src_addr), ("dst_addr", m.dst_addr),
                           ("out_src_addr", m.out_src_addr), ("out_dst_addr", m.out_dst_addr)):
            try:
                ipaddress.IPv4Address(addr)
            except ValueError:
                raise IntentError("INVALID_ARGUMENT",
                                  f"{what}: {addr!r} is not IPv4") from None
        for what, port in (("src_port", m.src_port), ("dst_port", m.dst_port),
                           ("out_src_port", m.out_src_port), ("out_dst_port", m.out_dst_port)):
            if not 0 < port < 65536:
                raise IntentError("INVALID_ARGUMENT", f"{what}: {port} is not a UDP port")
        if len(m.dcid) != VCID_BYTES or len(m.new_dcid) != VCID_BYTES:
            raise IntentError("FAILED_PRECONDITION",
                              f"the switch matches and rewrites {VCID_BYTES}-byte connection "
                              f"IDs only (got {len(m.dcid)} and {len(m.new_dcid)} bytes); "
                              "the proxy forwards this one itself")
        if not 0 <= m.rank <= RANK_MAX:
            raise IntentError("INVALID_ARGUMENT", f"rank {m.rank} outside 0..{RANK_MAX}")

    async def install_quic_mapping(self, client: ClientConf, mapping: QuicMappingIntent,
                                   session: ProxySession | None = None) -> QuicMappingIntent:
        """Install (or replace) a mapping; at most `max_quic_mappings` per MASQUE client."""
        mapping = QuicMappingIntent(**{**mapping.__dict__, "client": client.name})
        self._check_quic_mapping(client, mapping)
        others = self.store.count_quic_mappings(mapping.masque_client, mapping.key)
        if others >= self.config.max_quic_mappings:
            raise IntentError("RESOURCE_EXHAUSTED",
                              f"{mapping.masque_client} has {others} QUIC mappings, the "
                              f"most allowed (max_quic_mappings)")
        dcid = (mapping.dst_addr, mapping.dst_port, mapping.dcid)
        dcid_was_in_use = self.store.dcid_in_use(*dcid)
        old = self.store.put_quic_mapping(mapping)
        self.sessions.track(session, "quic_mapping", mapping.key)
        updates: list[Any] = []
        if old is not None:
            updates.append(~entities.quic_forward_entry(mapping))
        else:
            updates.append(+entities.quic_forward_entry(mapping))
        if not dcid_was_in_use:
            updates.append(+entities.quic_dcid_entry(*dcid))
        await self._push(updates)
        return mapping

    async def remove_quic_mapping(self, client: ClientConf,
                                  key: tuple[str, int, str, int, bytes]) -> None:
        """Remove a mapping (idempotent: removing a missing one is no error)."""
        if not (client.proxy or client.operator):
            raise IntentError("PERMISSION_DENIED",
                              f"{client.name} is not a proxy: only proxies remove QUIC mappings")
        old = self.store.quic_mapping(key)
        if old is None:
            return
        if old.client != client.name and not client.operator:
            raise IntentError("PERMISSION_DENIED", "this mapping belongs to another client")
        self.store.remove_quic_mapping(key)
        self.sessions.forget("quic_mapping", key)
        updates: list[Any] = [-entities.quic_forward_entry(old)]
        dcid = (old.dst_addr, old.dst_port, old.dcid)
        if not self.store.dcid_in_use(*dcid):
            updates.append(-entities.quic_dcid_entry(*dcid))
        await self._push(updates)

    async def end_session(self, session_id: str) -> dict[str, int]:
        """The session is over: remove what it made that is still installed (how many of
        each kind). Nothing is removed while the controller itself stops."""
        session = self.sessions.close(session_id)
        if session is None or self.shutting_down:
            return {}
        removed = {}
        client = session.client
        for kind, remove in (("stream", lambda k: self.remove_stream(client, *k)),
                             ("quic_mapping", lambda k: self.remove_quic_mapping(client, k)),
                             ("flow", lambda k: self.close_flow(client, k))):
            removed[kind] = 0
            for key in list(session.held[kind]):
                try:
                    await remove(key)
                except (IntentError, ConnectionError) as exc:
                    log.warning("session %s (%s) ended: %s %s not removed: %s",
                                session_id, client.name, kind, key, exc)
                    continue
                removed[kind] += 1
        return removed

    def list_quic_mappings(self, client: ClientConf) -> list[QuicMappingIntent]:
        return [m for m in self.store.quic_mappings()
                if client.operator or m.client == client.name]

    @staticmethod
    def _operator(client: ClientConf) -> None:
        if not client.operator:
            raise IntentError("PERMISSION_DENIED", f"{client.name} is not an operator")

    async def stats(self, client: ClientConf) -> list[dict[str, Any]]:
        self._operator(client)
        out = []
        for agent in self.agents:
            row: dict[str, Any] = {"switch": agent.conf.name,
                                   "connected": agent.connected.is_set(),
                                   "sched_mode": self.sched_mode, "burst_pct": self.burst_pct,
                                   "queue_depth": self.queue_depth, "counters": [],
                                   "sppifo_bounds": [], "note": "",
                                   "last_restore_s": agent.last_restore_s or 0.0,
                                   "write_requests": agent.batcher.stats["requests"],
                                   "write_updates": agent.batcher.stats["updates"]}
            if agent.connected.is_set():
                labels = {"drops": {r.value: r.name.lower() for r in DropReason},
                          "fastpath_misses": {m.value: m.name.lower() for m in MissCounter},
                          "queue_enqueues": {q: f"queue {q}" for q in range(NUM_QUEUES)},
                          "quic_forwarded": {0: "forwarded mode, all mappings"}}
                for name, names in labels.items():
                    for e in await agent.read([fy.P4CounterEntry(name)]):
                        row["counters"].append((name, e.index, names.get(e.index, ""),
                                                e.data.packet_count, e.data.byte_count))
                try:
                    bounds = await agent.read([fy.P4RegisterEntry("sppifo_bounds")])
                    row["sppifo_bounds"] = [b.data for b in sorted(bounds,
                                                                    key=lambda b: b.index)]
                except Exception as exc:  # BMv2's PI cannot read registers
                    row["note"] = f"SP-PIFO bounds unavailable: {str(exc).splitlines()[0]}"
            out.append(row)
        return out

    async def dump_table(self, client: ClientConf, name: str) -> list[str]:
        self._operator(client)
        for agent in self.agents:
            if agent.connected.is_set() and agent.session is not None:
                schema = agent.session.schema
                try:
                    found = await agent.read([fy.P4TableEntry(name)])
                    table = schema.tables[name]
                except ValueError as exc:
                    raise IntentError("NOT_FOUND", str(exc)) from None
                return [entry_text(e, table, schema) for e in found]
        raise IntentError("UNAVAILABLE", "no switch is connected")


def value_text(value: Any, bitwidth: int) -> str:
    """A match or parameter value as an operator reads it: IPv4, MAC, or decimal."""
    if isinstance(value, tuple):  # ternary (value, mask) or range (low, high)
        return "/".join(value_text(v, bitwidth) for v in value)
    if not isinstance(value, int):
        return str(value)
    if bitwidth == 32:
        return str(ipaddress.IPv4Address(value))
    if bitwidth == 48:
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    return str(value)


def entry_text(entry: Any, table: Any, schema: Any) -> str:
    widths = {f.alias: f.bitwidth for f in table.match_fields}
    match = " ".join(f"{k}={value_text(v, widths.get(k, 0))}"
                     for k, v in dict(entry.match or {}).items()) or "(default)"
    action = entry.action
    params = {p.name: p.bitwidth for p in schema.actions[action.name].params}
    args = ", ".join(f"{k}={value_text(v, params.get(k, 0))}" for k, v in action.args.items())
    priority = f" priority {entry.priority}" if entry.priority else ""
    return f"{match} -> {action.name}({args}){priority}"
