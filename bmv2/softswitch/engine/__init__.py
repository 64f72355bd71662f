"""The packet-processing engine of the built-in software target: a sans-I/O executor of
a BMv2 JSON (p4c's bmv2 backend, v1model) in pure Python.

    api       the public types (errors, specs, entries, outputs)
    compiler  BMv2 JSON -> one generated Python function per program
    tables    entry storage and BMv2 match semantics (exact, LPM, ternary, range)
    hashes    BMv2's hash/checksum algorithms
    core      Engine: the control-plane API around the compiled program
"""

from bmv2.softswitch.engine.api import (
    ALREADY_EXISTS,
    INVALID_ARGUMENT,
    NOT_FOUND,
    RESOURCE_EXHAUSTED,
    ActionSpec,
    CounterSpec,
    EngineError,
    Entry,
    KeySpec,
    MatchKey,
    Output,
    Queued,
    RegisterSpec,
    TableSpec,
    UnsupportedConstruct,
)
from bmv2.softswitch.engine.core import Engine

__all__ = [
    "ALREADY_EXISTS",
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "RESOURCE_EXHAUSTED",
    "ActionSpec",
    "CounterSpec",
    "Engine",
    "EngineError",
    "Entry",
    "KeySpec",
    "MatchKey",
    "Output",
    "Queued",
    "RegisterSpec",
    "TableSpec",
    "UnsupportedConstruct",
]
