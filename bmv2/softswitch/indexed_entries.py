"""P4Runtime CounterEntry, DirectCounterEntry and RegisterEntry on the engine (§9.3, §9.7).

Counters and registers are arrays: an entity with an `index` names one cell, one
without names them all, for reads and for writes alike (a counter MODIFY without an
index sets every cell, §9.3.2; a register write without one, §9.7). A negative index
is INVALID_ARGUMENT, one past the end OUT_OF_RANGE. Only MODIFY writes them; an unset
`data` leaves the value as it is. A direct counter belongs to a table entry: naming
a missing entry is NOT_FOUND (§9.3.1).
"""

from __future__ import annotations

from finsy.proto import p4d, p4i, p4r

from bmv2.softswitch.engine import Engine
from bmv2.softswitch.p4info_index import P4InfoError, P4InfoIndex, decode_int, encode_int
from bmv2.softswitch.table_entries import TableEntries, counter_values, field_match, match_keys


def _modify_only(kind: int, what: str) -> None:
    if kind != p4r.Update.MODIFY:
        raise P4InfoError("INVALID_ARGUMENT", f"{what} can only be modified (MODIFY)")


def _cells(entry: p4r.CounterEntry | p4r.RegisterEntry, size: int, what: str) -> range:
    """The indices an entity names: its index, or every cell if it has none."""
    if not entry.HasField("index"):
        return range(size)
    index = entry.index.index
    if index < 0:
        raise P4InfoError("INVALID_ARGUMENT", f"{what}: negative index {index}")
    if index >= size:
        raise P4InfoError("OUT_OF_RANGE", f"{what}: index {index} outside 0..{size - 1}")
    return range(index, index + 1)


class IndexedEntries:
    """Counters, direct counters and registers of one pipeline."""

    def __init__(self, index: P4InfoIndex, engine: Engine, tables: TableEntries) -> None:
        self.index = index
        self.engine = engine
        self.tables = tables

    # -- counters -----------------------------------------------------------------------------
    def write_counter(self, kind: int, entry: p4r.CounterEntry) -> None:
        _modify_only(kind, "counter entries")
        if entry.counter_id == 0:
            raise P4InfoError("INVALID_ARGUMENT", "counter_id 0 is not a counter (§8.1.1)")
        info = self.index.counter(entry.counter_id)
        cells = _cells(entry, info.size, info.preamble.name)
        if not entry.HasField("data"):
            return
        packets, nbytes = counter_values(entry.data, info.preamble.name)
        for i in cells:
            self.engine.counter_write(info.preamble.name, i, packets, nbytes)

    def read_counters(self, query: p4r.CounterEntry) -> list[p4r.Entity]:
        infos = ([self.index.counter(query.counter_id)] if query.counter_id
                 else list(self.index.counters.values()))
        out: list[p4r.Entity] = []
        for info in infos:
            for i in _cells(query, info.size, info.preamble.name):
                packets, nbytes = self.engine.counter_read(info.preamble.name, i)
                out.append(p4r.Entity(counter_entry=p4r.CounterEntry(
                    counter_id=info.preamble.id, index=p4r.Index(index=i),
                    data=p4r.CounterData(packet_count=packets, byte_count=nbytes))))
        return out

    # -- direct counters ----------------------------------------------------------------------
    def write_direct_counter(self, kind: int, entry: p4r.DirectCounterEntry) -> None:
        _modify_only(kind, "direct counter entries")
        table, keys, priority = self.tables.locate(entry.table_entry)
        if table.direct_counter_id is None:
            raise P4InfoError("INVALID_ARGUMENT", f"{table.name} has no direct counter")
        if entry.table_entry.is_default_action:
            raise P4InfoError("UNIMPLEMENTED", "the direct counter of a default entry")
        self.engine.entry(table.name, keys, priority)  # NOT_FOUND if there is none
        if entry.HasField("data"):
            packets, nbytes = counter_values(entry.data, f"{table.name} direct counter")
            self.engine.direct_counter_write(table.name, keys, priority, packets, nbytes)

    def read_direct_counters(self, query: p4r.DirectCounterEntry) -> list[p4r.Entity]:
        te = query.table_entry
        if te.table_id == 0:
            if te.match:
                raise P4InfoError("INVALID_ARGUMENT", "a match needs a table_id")
            tables = [t for t in self.index.tables.values() if t.direct_counter_id]
        else:
            tables = [self.index.table(te.table_id)]
            if tables[0].direct_counter_id is None:
                raise P4InfoError("INVALID_ARGUMENT", f"{tables[0].name} has no direct counter")
        out: list[p4r.Entity] = []
        for table in tables:
            if te.match:
                keys = match_keys(table, te.match)
                entries = [self.engine.entry(table.name, keys, te.priority)]  # or NOT_FOUND
            else:
                entries = [e for e in self.engine.entries(table.name)
                           if not te.priority or e.priority == te.priority]
            for e in entries:
                key = p4r.TableEntry(table_id=table.id, priority=e.priority)
                for f, k in zip(table.match_fields, e.keys, strict=True):
                    fm = field_match(f, k)
                    if fm is not None:
                        key.match.append(fm)
                out.append(p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
                    table_entry=key,
                    data=p4r.CounterData(packet_count=e.packets, byte_count=e.bytes))))
        return out

    # -- registers ----------------------------------------------------------------------------
    @staticmethod
    def _width(info: p4i.Register) -> int:
        return info.type_spec.bitstring.bit.bitwidth

    def write_register(self, kind: int, entry: p4r.RegisterEntry) -> None:
        _modify_only(kind, "register entries")
        if entry.register_id == 0:
            raise P4InfoError("INVALID_ARGUMENT", "register_id 0 is not a register (§8.1.1)")
        info = self.index.register(entry.register_id)
        cells = _cells(entry, info.size, info.preamble.name)
        if entry.data.WhichOneof("data") != "bitstring":
            raise P4InfoError("INVALID_ARGUMENT",
                              f"{info.preamble.name}: data must be a bitstring (its type_spec)")
        value = decode_int(entry.data.bitstring, self._width(info), info.preamble.name)
        for i in cells:
            self.engine.register_write(info.preamble.name, i, value)

    def read_registers(self, query: p4r.RegisterEntry) -> list[p4r.Entity]:
        infos = ([self.index.register(query.register_id)] if query.register_id
                 else list(self.index.registers.values()))
        out: list[p4r.Entity] = []
        for info in infos:
            width = self._width(info)
            for i in _cells(query, info.size, info.preamble.name):
                value = self.engine.register_read(info.preamble.name, i)
                out.append(p4r.Entity(register_entry=p4r.RegisterEntry(
                    register_id=info.preamble.id, index=p4r.Index(index=i),
                    data=p4d.P4Data(bitstring=encode_int(value, width)))))
        return out
