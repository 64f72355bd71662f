"""P4Info ids to the BMv2 JSON names the engine knows, and P4Runtime byte strings to ints.

p4c gives P4Info objects and BMv2 JSON objects the same fully qualified names
(`MpIngress.fast_path.fastpath_decap`), and keeps match fields and action
parameters in the same order, so a lookup by name is all the translation needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from finsy.proto import p4i


class P4InfoError(ValueError):
    """A P4Runtime request names something the P4Info does not have, or a bad value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def decode_int(data: bytes, bitwidth: int, what: str) -> int:
    """A P4Runtime byte string as an int; INVALID_ARGUMENT if it does not fit `bitwidth`."""
    if not data:
        raise P4InfoError("INVALID_ARGUMENT", f"{what}: empty value")
    value = int.from_bytes(data, "big")
    if value >> bitwidth:
        raise P4InfoError("INVALID_ARGUMENT",
                          f"{what}: value 0x{data.hex()} does not fit in {bitwidth} bits")
    return value


def encode_int(value: int, bitwidth: int) -> bytes:
    """The canonical P4Runtime byte string of `value` (shortest, at least one byte)."""
    del bitwidth  # canonical form: no leading zero bytes
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _unknown(kind: str, object_id: int) -> P4InfoError:
    """An id the P4Info does not have: a malformed request (INVALID_ARGUMENT, as BMv2),
    not a missing entity (NOT_FOUND is for entries that are not installed)."""
    return P4InfoError("INVALID_ARGUMENT", f"the P4Info has no {kind} with id {object_id}")


@dataclass
class TableInfo:
    """What a P4Runtime request on a table is checked against."""

    id: int
    name: str
    match_fields: list[p4i.MatchField]
    action_ids: set[int]
    direct_counter_id: int | None = None
    #: action id -> p4i.ActionRef scope (TABLE_AND_DEFAULT, TABLE_ONLY, DEFAULT_ONLY)
    action_scopes: dict[int, int] = field(default_factory=dict)
    const_default_action_id: int = 0
    is_const_table: bool = False
    idle_timeout: bool = False
    direct_meter_id: int | None = None
    implementation_id: int = 0

    @property
    def needs_priority(self) -> bool:
        """Entries of tables with a ternary, range or optional field carry a priority."""
        return any(f.match_type in (p4i.MatchField.TERNARY, p4i.MatchField.RANGE,
                                    p4i.MatchField.OPTIONAL) for f in self.match_fields)


@dataclass
class ControllerHeader:
    """A @controller_header's fields: (id, name, bitwidth), in wire order."""

    fields: list[tuple[int, str, int]]

    @property
    def size(self) -> int:
        return sum(width for _, _, width in self.fields) // 8

    def pack(self, values: dict[int, int]) -> bytes:
        """The header's bytes with these field values (missing fields are 0)."""
        number = 0
        for field_id, _, width in self.fields:
            number = (number << width) | values.get(field_id, 0)
        return number.to_bytes(self.size, "big")

    def values_of(self, metadata: list[tuple[int, bytes]]) -> dict[int, int]:
        """Field values of a PacketOut's metadata, which must name every field of the
        header exactly once with a value that fits (§16.1); INVALID_ARGUMENT otherwise."""
        widths = {fid: (name, width) for fid, name, width in self.fields}
        values: dict[int, int] = {}
        for fid, raw in metadata:
            if fid not in widths:
                raise P4InfoError("INVALID_ARGUMENT", f"unknown metadata id {fid}")
            if fid in values:
                raise P4InfoError("INVALID_ARGUMENT", f"metadata id {fid} given twice")
            name, width = widths[fid]
            values[fid] = decode_int(raw, width, f"metadata {name}")
        missing = [name for fid, (name, _) in widths.items() if fid not in values]
        if missing:
            raise P4InfoError("INVALID_ARGUMENT", f"metadata missing: {', '.join(missing)}")
        return values

    def unpack(self, data: bytes) -> list[tuple[int, int]]:
        number = int.from_bytes(data[:self.size], "big")
        out: list[tuple[int, int]] = []
        shift = self.size * 8
        for field_id, _, width in self.fields:
            shift -= width
            out.append((field_id, (number >> shift) & ((1 << width) - 1)))
        return out


@dataclass
class P4InfoIndex:
    """Lookups over one P4Info."""

    p4info: p4i.P4Info
    tables: dict[int, TableInfo] = field(default_factory=dict)
    actions: dict[int, p4i.Action] = field(default_factory=dict)
    counters: dict[int, p4i.Counter] = field(default_factory=dict)
    direct_counters: dict[int, p4i.DirectCounter] = field(default_factory=dict)
    registers: dict[int, p4i.Register] = field(default_factory=dict)
    packet_in: ControllerHeader | None = None
    packet_out: ControllerHeader | None = None
    _action_names: dict[str, p4i.Action] = field(default_factory=dict)

    def __post_init__(self) -> None:
        info = self.p4info
        self.direct_counters = {c.preamble.id: c for c in info.direct_counters}
        meters = {m.preamble.id for m in info.direct_meters}
        for table in info.tables:
            resources = list(table.direct_resource_ids)
            self.tables[table.preamble.id] = TableInfo(
                table.preamble.id, table.preamble.name, list(table.match_fields),
                {ref.id for ref in table.action_refs},
                next((r for r in resources if r in self.direct_counters), None),
                {ref.id: ref.scope for ref in table.action_refs},
                table.const_default_action_id, table.is_const_table,
                table.idle_timeout_behavior == p4i.Table.NOTIFY_CONTROL,
                next((r for r in resources if r in meters), None),
                table.implementation_id)
        self.actions = {a.preamble.id: a for a in info.actions}
        self._action_names = {a.preamble.name: a for a in info.actions}
        self.counters = {c.preamble.id: c for c in info.counters}
        self.registers = {r.preamble.id: r for r in info.registers}
        for meta in info.controller_packet_metadata:
            header = ControllerHeader([(m.id, m.name, m.bitwidth) for m in meta.metadata])
            if meta.preamble.name == "packet_in":
                self.packet_in = header
            elif meta.preamble.name == "packet_out":
                self.packet_out = header

    def table(self, table_id: int) -> TableInfo:
        try:
            return self.tables[table_id]
        except KeyError:
            raise _unknown("table", table_id) from None

    def action(self, action_id: int) -> p4i.Action:
        try:
            return self.actions[action_id]
        except KeyError:
            raise _unknown("action", action_id) from None

    def counter(self, counter_id: int) -> p4i.Counter:
        try:
            return self.counters[counter_id]
        except KeyError:
            raise _unknown("counter", counter_id) from None

    def register(self, register_id: int) -> p4i.Register:
        try:
            return self.registers[register_id]
        except KeyError:
            raise _unknown("register", register_id) from None

    def table_by_name(self, name: str) -> TableInfo:
        for table in self.tables.values():
            if table.name == name:
                return table
        raise P4InfoError("NOT_FOUND", f"no table named {name!r}")

    def action_by_name(self, name: str) -> p4i.Action:
        try:
            return self._action_names[name]
        except KeyError:
            raise P4InfoError("NOT_FOUND", f"no action named {name!r}") from None
