"""Raw P4Runtime entities of the committed program, built by name from its P4Info.

Values are ints and are encoded canonically (shortest bytes); a case that needs a
non-canonical or malformed value edits the returned message.
"""

from __future__ import annotations

from functools import cache

from finsy.proto import p4d, p4i, p4r

from tests.p4runtime.client import p4info

INSERT, MODIFY, DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE

#: the PacketOut/PacketIn header fields (ids of the committed P4Info)
EGRESS_PORT_ID, OUT_PAD_ID = 1, 2
CPU_PORT = 255


def enc(value: int) -> bytes:
    """Canonical bytestring (§8.3)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


@cache
def _info() -> p4i.P4Info:
    return p4info()


def table(alias: str) -> p4i.Table:
    return next(t for t in _info().tables if t.preamble.alias == alias)


def action(alias: str) -> p4i.Action:
    return next(a for a in _info().actions if alias in (a.preamble.alias, a.preamble.name))


def counter(alias: str) -> p4i.Counter:
    return next(c for c in _info().counters if c.preamble.alias == alias)


def register(alias: str) -> p4i.Register:
    return next(r for r in _info().registers if r.preamble.alias == alias)


def field_id(table_alias: str, name: str) -> int:
    return next(f.id for f in table(table_alias).match_fields if f.name == name)


def exact(table_alias: str, name: str, value: int) -> p4r.FieldMatch:
    return p4r.FieldMatch(field_id=field_id(table_alias, name),
                          exact=p4r.FieldMatch.Exact(value=enc(value)))


def ternary(table_alias: str, name: str, value: int, mask: int) -> p4r.FieldMatch:
    return p4r.FieldMatch(field_id=field_id(table_alias, name), ternary=p4r.FieldMatch.Ternary(
        value=enc(value), mask=enc(mask)))


def lpm(table_alias: str, name: str, value: int, prefix_len: int) -> p4r.FieldMatch:
    return p4r.FieldMatch(field_id=field_id(table_alias, name), lpm=p4r.FieldMatch.LPM(
        value=enc(value), prefix_len=prefix_len))


def range_(table_alias: str, name: str, low: int, high: int) -> p4r.FieldMatch:
    return p4r.FieldMatch(field_id=field_id(table_alias, name), range=p4r.FieldMatch.Range(
        low=enc(low), high=enc(high)))


def call(alias: str, **params: int) -> p4r.TableAction:
    info = action(alias)
    ids = {p.name: p.id for p in info.params}
    return p4r.TableAction(action=p4r.Action(action_id=info.preamble.id, params=[
        p4r.Action.Param(param_id=ids[name], value=enc(v)) for name, v in params.items()]))


def entry(table_alias: str, *match: p4r.FieldMatch, action: p4r.TableAction | None = None,
          priority: int = 0) -> p4r.TableEntry:
    te = p4r.TableEntry(table_id=table(table_alias).preamble.id, match=list(match),
                        priority=priority)
    if action is not None:
        te.action.CopyFrom(action)
    return te


def update(kind: int, te: p4r.TableEntry) -> p4r.Update:
    return p4r.Update(type=kind, entity=p4r.Entity(table_entry=te))  # type: ignore[arg-type]


def entity(te: p4r.TableEntry) -> p4r.Entity:
    return p4r.Entity(table_entry=te)


# -- entries the cases use ---------------------------------------------------------------------
def flow_id(n: int = 7) -> p4r.TableEntry:
    """An exact-match entry (fastpath_flow_ids: flow_id -> flow_known)."""
    return entry("fastpath_flow_ids", exact("fastpath_flow_ids", "flow_id", n),
                 action=call("flow_known"))


def rank(src: int = 0x0A000001, priority: int = 10, rank_value: int = 5) -> p4r.TableEntry:
    """A ternary entry (flow_rank: src_addr/32 -> set_rank)."""
    return entry("flow_rank", ternary("flow_rank", "src_addr", src, 0xFFFFFFFF),
                 action=call("set_rank", rank=rank_value), priority=priority)


def route(prefix: int = 0x0A000100, length: int = 24, port: int = 1) -> p4r.TableEntry:
    """An LPM entry (ipv4_lpm -> route)."""
    return entry("ipv4_lpm", lpm("ipv4_lpm", "dst_addr", prefix, length),
                 action=call("route", port=port, src_mac=0x02AA00000001,
                             dst_mac=0x02000000010A))


def queue_range(low: int = 0, high: int = 100, queue: int = 3, priority: int = 1
                ) -> p4r.TableEntry:
    """A range entry (rank_to_queue -> set_queue)."""
    return entry("rank_to_queue", range_("rank_to_queue", "rank", low, high),
                 action=call("set_queue", queue=queue), priority=priority)


def decap(flow: int = 7) -> p4r.TableEntry:
    """An entry of a table with a direct counter (fastpath_decap -> decap)."""
    t = "fastpath_decap"
    return entry(t, exact(t, "client_addr", 0x0A000001), exact(t, "client_port", 50000),
                 exact(t, "flow_id", flow),
                 action=call("decap", proxy_addr=0x0A00020A, proxy_port=40000,
                             target_addr=0x0A00030A, target_port=443))


def default_of(table_alias: str, action: p4r.TableAction | None = None) -> p4r.TableEntry:
    te = p4r.TableEntry(table_id=table(table_alias).preamble.id, is_default_action=True)
    if action is not None:
        te.action.CopyFrom(action)
    return te


def counter_entry(alias: str, index: int | None = None, packets: int | None = None,
                  nbytes: int = 0) -> p4r.Entity:
    ce = p4r.CounterEntry(counter_id=counter(alias).preamble.id)
    if index is not None:
        ce.index.index = index
    if packets is not None:
        ce.data.CopyFrom(p4r.CounterData(packet_count=packets, byte_count=nbytes))
    return p4r.Entity(counter_entry=ce)


def register_entry(alias: str, index: int | None = None, value: int | None = None
                   ) -> p4r.Entity:
    re_ = p4r.RegisterEntry(register_id=register(alias).preamble.id)
    if index is not None:
        re_.index.index = index
    if value is not None:
        re_.data.CopyFrom(p4d.P4Data(bitstring=enc(value)))
    return p4r.Entity(register_entry=re_)


def direct_counter(te: p4r.TableEntry, packets: int | None = None) -> p4r.Entity:
    key = p4r.TableEntry(table_id=te.table_id, match=te.match, priority=te.priority)
    dce = p4r.DirectCounterEntry(table_entry=key)
    if packets is not None:
        dce.data.CopyFrom(p4r.CounterData(packet_count=packets, byte_count=packets * 100))
    return p4r.Entity(direct_counter_entry=dce)


def loopback_frame(marker: bytes) -> bytes:
    """A frame that a PacketOut to the CPU port brings back as a PacketIn: the program
    sends PacketOuts where their egress_port says, and a frame reaching the CPU port
    goes to the controller with its first 3 bytes read as the packet_in header."""
    ethernet = bytes(6) + bytes.fromhex("02aa00000001") + bytes.fromhex("88b5")
    return bytes(3) + ethernet + marker
