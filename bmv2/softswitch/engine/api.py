"""The engine's public types: errors, table/action/register/counter descriptions, entries
and outputs. They are what the P4Runtime server and the CLI code against, so they carry
plain names and integers only (no P4Info ids, no byte strings)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"


class UnsupportedConstruct(ValueError):
    """The BMv2 JSON uses something the engine does not execute; the message names it
    (e.g. "primitive 'clone_ingress_pkt_to_egress'"). Raised at load, never per packet,
    so that a program is either run faithfully or refused."""

    def __init__(self, construct: str, where: str = "") -> None:
        self.construct = construct
        self.where = where
        super().__init__(f"{construct}" + (f" (in {where})" if where else ""))


class EngineError(Exception):
    """A runtime API call the engine refuses; `code` is a P4Runtime status name
    (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, RESOURCE_EXHAUSTED) so that the
    P4Runtime server can pass it on unchanged."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class MatchKey:
    """One key field of a table entry.

    kind: "exact" | "lpm" | "ternary" | "range" | "optional".
    value: exact/optional value; lpm value; ternary value; range low.
    arg: lpm prefix length; ternary mask; range high; None for exact, and for optional
    None means a wildcard (anything else: match `value` exactly).
    """

    kind: str
    value: int
    arg: int | None = None


@dataclass(frozen=True)
class KeySpec:
    """A table key field: `name` is the JSON key's "name" (the P4 @name, as in the
    P4Info), `kind` its match kind, `bitwidth` the width of the values it takes."""

    name: str
    kind: str
    bitwidth: int


@dataclass(frozen=True)
class TableSpec:
    """What the control plane needs to know about a table."""

    name: str
    keys: list[KeySpec]
    actions: list[str]
    default_action: str
    default_params: list[int]
    const_default_action: bool
    size: int
    direct_counter: str | None
    needs_priority: bool


@dataclass(frozen=True)
class ActionSpec:
    """An action and its parameters as (name, bitwidth)."""

    name: str
    params: list[tuple[str, int]]


@dataclass(frozen=True)
class RegisterSpec:
    name: str
    size: int
    bitwidth: int


@dataclass(frozen=True)
class CounterSpec:
    """An indexed counter array, or a direct counter (size 0, `direct_table` set)."""

    name: str
    size: int
    direct_table: str | None


@dataclass
class Entry:
    """A table entry as the control plane sees it; packets/bytes are its direct counter."""

    keys: list[MatchKey]
    action: str
    params: list[int]
    priority: int
    packets: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Output:
    """A frame leaving the pipeline on `port` with v1model priority `priority`."""

    port: int
    priority: int
    frame: bytes


@dataclass(frozen=True)
class Queued:
    """A packet between ingress and egress, where simple_switch's traffic manager holds
    it: its egress port, its v1model priority (the queue), and the paused packet function
    that `Engine.egress` resumes when it leaves the queue."""

    port: int
    priority: int
    stages: Generator[tuple[int, int], None, list[Output]]
