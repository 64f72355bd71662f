"""The `Engine`: a compiled BMv2 JSON plus its runtime state (table entries, registers,
counters), with the control-plane API the P4Runtime server drives and `process()`."""

from __future__ import annotations

from typing import Any

from bmv2.softswitch.engine.api import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    ActionSpec,
    CounterSpec,
    EngineError,
    Entry,
    MatchKey,
    Output,
    Queued,
    RegisterSpec,
    TableSpec,
)
from bmv2.softswitch.engine.compiler import Compiler, load_json
from bmv2.softswitch.engine.tables import TableState

_U64 = 1 << 64


class Engine:
    """A sans-I/O executor of one BMv2 JSON (p4c bmv2 backend, v1model).

    The JSON is compiled once, at construction, into a single Python function (see
    `compiler`); `UnsupportedConstruct` is raised there for anything it cannot run.
    `process()` runs one frame through parser, verify checksum, ingress, egress,
    compute checksum and deparser, as simple_switch does, and returns what leaves.
    The engine is not thread-safe: callers serialise `process()` and writes.
    """

    def __init__(self, bmv2_json: dict[str, Any] | bytes | str) -> None:
        program = Compiler(load_json(bmv2_json)).compile()
        self._program = program
        self._process = program.process
        self._tables: dict[str, TableState] = program.tables
        self.tables: dict[str, TableSpec] = program.table_specs
        self.actions: dict[str, ActionSpec] = program.actions
        self.registers: dict[str, RegisterSpec] = program.registers
        self.counters: dict[str, CounterSpec] = program.counters
        self._registers = program.register_cells
        self._counters = program.counter_cells

    @property
    def source(self) -> str:
        """The generated Python source of the packet function (for debugging)."""
        return self._program.source

    # -- packets ---------------------------------------------------------------------------------
    def process(self, frame: bytes, ingress_port: int) -> list[Output]:
        """Run `frame`, received on `ingress_port`, through the pipeline. Returns the
        frames that leave (none when dropped), each with its egress port and the
        `standard_metadata.priority` set by the end of ingress."""
        queued = self.ingress(frame, ingress_port)
        return [] if queued is None else self.egress(queued)

    def ingress(self, frame: bytes, ingress_port: int) -> Queued | None:
        """The first half of `process`: parser, verify checksum and ingress. None when
        ingress dropped the packet; else where it is to be queued, and the state that
        `egress` resumes when it leaves the queue (as simple_switch runs egress at
        dequeue, after its traffic manager)."""
        stages = self._process(frame, ingress_port)
        try:
            port, priority = next(stages)
        except StopIteration:
            return None
        return Queued(port, priority, stages)

    def egress(self, queued: Queued) -> list[Output]:
        """The second half of `process`: egress, compute checksum and deparser for a
        packet `ingress` queued; [] when egress dropped it. Call once per packet."""
        try:
            next(queued.stages)
        except StopIteration as done:
            return list(done.value)
        raise AssertionError("the packet function yields once")

    # -- tables ----------------------------------------------------------------------------------
    def _table(self, name: str) -> TableState:
        table = self._tables.get(name)
        if table is None:
            raise EngineError(NOT_FOUND, f"no table {name!r}")
        return table

    def add_entry(self, table: str, keys: list[MatchKey], action: str, params: list[int],
                  priority: int = 0) -> None:
        """Insert an entry; ALREADY_EXISTS if one with the same keys (and priority) is
        there, RESOURCE_EXHAUSTED when the table is full, INVALID_ARGUMENT for keys,
        action or params that do not fit the table."""
        self._table(table).add(list(keys), action, list(params), priority)

    def modify_entry(self, table: str, keys: list[MatchKey], action: str, params: list[int],
                     priority: int = 0) -> None:
        """Change the action of an installed entry (its counters are kept)."""
        self._table(table).modify(list(keys), action, list(params), priority)

    def delete_entry(self, table: str, keys: list[MatchKey], priority: int = 0) -> None:
        """Remove an installed entry; NOT_FOUND if there is none with these keys."""
        self._table(table).delete(list(keys), priority)

    def entries(self, table: str) -> list[Entry]:
        """Copies of the table's entries in insertion order, with their direct counters."""
        return self._table(table).entries()

    def entry(self, table: str, keys: list[MatchKey], priority: int = 0) -> Entry:
        """A copy of the installed entry with these keys; NOT_FOUND if there is none."""
        return self._table(table).find(list(keys), priority).entry()

    def set_default(self, table: str, action: str, params: list[int]) -> None:
        """Set the action run on a miss; INVALID_ARGUMENT if the default is constant
        or `action` is not an action of the table."""
        self._table(table).set_default(action, list(params))

    def get_default(self, table: str) -> tuple[str, list[int]]:
        """The action (and its params) run on a miss."""
        return self._table(table).get_default()

    def direct_counter_write(self, table: str, keys: list[MatchKey], priority: int,
                             packets: int, bytes: int) -> None:  # noqa: A002 - API name
        """Set the direct counter of one entry."""
        state = self._table(table)
        if state.spec.direct_counter is None:
            raise EngineError(INVALID_ARGUMENT, f"table {table} has no direct counter")
        _check_counts(table, packets, bytes)
        rec = state.find(list(keys), priority)
        rec.packets, rec.bytes = packets, bytes

    # -- registers and counters ------------------------------------------------------------------
    def _register(self, name: str, index: int) -> tuple[RegisterSpec, list[int]]:
        spec = self.registers.get(name)
        if spec is None:
            raise EngineError(NOT_FOUND, f"no register {name!r}")
        if not isinstance(index, int) or not 0 <= index < spec.size:
            raise EngineError(INVALID_ARGUMENT, f"register {name}: index {index!r} outside"
                              f" 0..{spec.size - 1}")
        return spec, self._registers[name]

    def register_read(self, name: str, index: int) -> int:
        """One register cell; NOT_FOUND for an unknown register, INVALID_ARGUMENT for an
        index outside it."""
        _, cells = self._register(name, index)
        return cells[index]

    def register_write(self, name: str, index: int, value: int) -> None:
        """Set one register cell; INVALID_ARGUMENT if `value` is wider than the register."""
        spec, cells = self._register(name, index)
        if not isinstance(value, int) or not 0 <= value < (1 << spec.bitwidth):
            raise EngineError(INVALID_ARGUMENT, f"register {name}: {value!r} does not fit in"
                              f" {spec.bitwidth} bits")
        cells[index] = value

    def _counter(self, name: str, index: int) -> tuple[list[int], list[int]]:
        spec = self.counters.get(name)
        if spec is None:
            raise EngineError(NOT_FOUND, f"no counter {name!r}")
        if spec.direct_table is not None:
            raise EngineError(INVALID_ARGUMENT, f"counter {name} is a direct counter of"
                              f" table {spec.direct_table}: read it through the entries")
        if not isinstance(index, int) or not 0 <= index < spec.size:
            raise EngineError(INVALID_ARGUMENT, f"counter {name}: index {index!r} outside"
                              f" 0..{spec.size - 1}")
        return self._counters[name]

    def counter_read(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of one cell; bytes count frames as they arrived."""
        packets, nbytes = self._counter(name, index)
        return packets[index], nbytes[index]

    def counter_write(self, name: str, index: int, packets: int, bytes: int) -> None:  # noqa: A002
        """Set one cell of an indexed counter (P4Runtime MODIFY of a CounterEntry)."""
        cells = self._counter(name, index)
        _check_counts(name, packets, bytes)
        cells[0][index], cells[1][index] = packets, bytes

    # -- state -----------------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Empty every table (then reload the JSON's const entries), restore the JSON's
        default actions, zero every register and counter."""
        for table in self._tables.values():
            table.reset()
        for load in self._program.const_entries:
            load()
        for cells in self._registers.values():
            cells[:] = [0] * len(cells)
        for packets, nbytes in self._counters.values():
            packets[:] = [0] * len(packets)
            nbytes[:] = [0] * len(nbytes)


def _check_counts(name: str, packets: int, nbytes: int) -> None:
    for what, value in (("packets", packets), ("bytes", nbytes)):
        if not isinstance(value, int) or not 0 <= value < _U64:
            raise EngineError(INVALID_ARGUMENT, f"{name}: {what} {value!r} outside 0..2**64-1")
