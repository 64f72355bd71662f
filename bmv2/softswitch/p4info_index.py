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


@dataclass
class TableInfo:
    id: int
    name: str
    match_fields: list[p4i.MatchField]
    action_ids: set[int]
    direct_counter_id: int | None = None


@dataclass
class ControllerHeader:
    """A @controller_header's fields: (id, name, bitwidth), in wire order."""

    fields: list[tuple[int, str, int]]

    @property
    def size(self) -> int:
        return sum(width for _, _, width in self.fields) // 8

    def pack(self, values: dict[int, int]) -> bytes:
        number = 0
        for field_id, _, width in self.fields:
            number = (number << width) | values.get(field_id, 0)
        return number.to_bytes(self.size, "big")

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

    def __post_init__(self) -> None:
        info = self.p4info
        for table in info.tables:
            self.tables[table.preamble.id] = TableInfo(
                table.preamble.id, table.preamble.name, list(table.match_fields),
                {ref.id for ref in table.action_refs},
                next((r for r in table.direct_resource_ids), None))
        self.actions = {a.preamble.id: a for a in info.actions}
        self.counters = {c.preamble.id: c for c in info.counters}
        self.direct_counters = {c.preamble.id: c for c in info.direct_counters}
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
            raise P4InfoError("NOT_FOUND", f"no table with id {table_id}") from None

    def action(self, action_id: int) -> p4i.Action:
        try:
            return self.actions[action_id]
        except KeyError:
            raise P4InfoError("NOT_FOUND", f"no action with id {action_id}") from None

    def counter(self, counter_id: int) -> p4i.Counter:
        try:
            return self.counters[counter_id]
        except KeyError:
            raise P4InfoError("NOT_FOUND", f"no counter with id {counter_id}") from None

    def register(self, register_id: int) -> p4i.Register:
        try:
            return self.registers[register_id]
        except KeyError:
            raise P4InfoError("NOT_FOUND", f"no register with id {register_id}") from None

    def table_by_name(self, name: str) -> TableInfo:
        for table in self.tables.values():
            if table.name == name:
                return table
        raise P4InfoError("NOT_FOUND", f"no table named {name!r}")

    def action_by_name(self, name: str) -> p4i.Action:
        for action in self.actions.values():
            if action.preamble.name == name:
                return action
        raise P4InfoError("NOT_FOUND", f"no action named {name!r}")
