"""Run p4c's STF packet tests (testdata/p4_16_samples/*.stf) on the engine.

The subset of STF that p4c's bmv2 tests use for single-pipeline checks: `add` (table
entries, optional priority), `setdefault`, `packet`, `expect` (hex with `*` wildcards, a
trailing `$` for an exact length, no data for "anything"). Names are resolved as p4c's
bmv2stf.py does (suffix matches of tables, actions and key names). Commands for
multicast, mirroring, meters or counters raise `StfUnsupported`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bmv2.softswitch.engine import Engine, MatchKey


class StfUnsupported(Exception):
    """The STF file needs something this runner does not drive."""


@dataclass
class StfRun:
    """Frames seen per port, and the expectations per port, in order."""

    got: dict[int, list[bytes]] = field(default_factory=dict)
    expected: dict[int, list[str]] = field(default_factory=dict)

    def mismatches(self) -> list[str]:
        problems = []
        for port in sorted(set(self.got) | set(self.expected)):
            want = self.expected.get(port, [])
            got = self.got.get(port, [])
            if want and all(w == "" for w in want):
                continue  # "expect <port>" alone: anything goes
            if len(want) != len(got):
                problems.append(f"port {port}: expected {len(want)} frames, got {len(got)}:"
                                f" {[g.hex() for g in got]}")
                continue
            for i, (w, g) in enumerate(zip(want, got, strict=True)):
                if w and not matches(w, g):
                    problems.append(f"port {port} frame {i}: expected {w}, got {g.hex()}")
        return problems


def matches(expected: str, frame: bytes) -> bool:
    """p4c testutils.compare_pkt: hex digits, `*` wildcards, `$` for an exact length."""
    exact = expected.endswith("$")
    want = "".join(expected.rstrip("$").split()).upper()
    got = frame.hex().upper()
    if len(got) < len(want) or (exact and len(got) > len(want)):
        return False
    return all(w in ("*", g) for w, g in zip(want, got, strict=False))


def _number(text: str) -> tuple[int, int | None, int]:
    """(value, mask for `*` digits or None, number of bits written)."""
    bases = {"0x": (16, 4, "f"), "0b": (2, 1, "1"), "0o": (8, 3, "7")}
    prefix = text[:2].lower()
    if prefix not in bases:
        if "*" in text:
            raise StfUnsupported(f"decimal ternary value {text}")
        return int(text), None, 0
    base, bits, full = bases[prefix]
    digits = text[2:]
    value = int(digits.replace("*", "0"), base)
    if "*" not in digits:
        return value, None, len(digits) * bits
    mask = int("".join("0" if c == "*" else full for c in digits), base)
    return value, mask, len(digits) * bits


def _resolve(names: list[str], wanted: str, what: str) -> str:
    if wanted in names:
        return wanted
    candidates = [n for n in names if n.endswith(wanted)]
    if len(candidates) != 1:
        raise StfUnsupported(f"{what} {wanted!r}: candidates {candidates}")
    return candidates[0]


def _key_index(names: list[str], wanted: str) -> int:
    m = re.match(r"(.*)\$([0-9]+)(.*)", wanted)
    if m:
        wanted = f"{m.group(1)}[{m.group(2)}]{m.group(3)}"
    for candidate in (wanted, wanted + "$", wanted + ".$valid$"):
        if candidate in names:
            return names.index(candidate)
    if wanted.endswith(".valid") and wanted[:-5] + "$valid$" in names:
        return names.index(wanted[:-5] + "$valid$")
    for i, name in enumerate(names):
        if name.endswith("." + wanted) or name.endswith("." + wanted + "$"):
            return i
        if wanted == "valid" and name.endswith(".$valid$"):
            return i
    raise StfUnsupported(f"key field {wanted!r} not in {names}")


def _keys(engine: Engine, table: str, pairs: list[tuple[str, str]]) -> list[MatchKey]:
    spec = engine.tables[table]
    keys: list[MatchKey | None] = []
    for k in spec.keys:  # what an omitted field means, as bmv2stf.py
        keys.append({"lpm": MatchKey("lpm", 0, 0), "ternary": MatchKey("ternary", 0, 0),
                     "range": MatchKey("range", 0, (1 << k.bitwidth) - 1)}.get(k.kind))
    names = [k.name for k in spec.keys]
    for name, text in pairs:
        i = _key_index(names, name)
        k = spec.keys[i]
        full = (1 << k.bitwidth) - 1
        if k.kind == "lpm":
            if "/" in text:
                value_text, length = text.split("/")
                value, plen = _number(value_text)[0], int(length)
            else:
                value, mask, nbits = _number(text)
                plen = k.bitwidth if mask is None else nbits - text.count("*") * 4
            keys[i] = MatchKey("lpm", value & (full ^ (full >> plen)), plen)
        elif k.kind == "ternary":
            value, mask, _ = _number(text)
            mask = full if mask is None else mask & full
            keys[i] = MatchKey("ternary", value & mask, mask)
        elif k.kind == "range":
            raise StfUnsupported("range keys in an STF file")
        else:
            keys[i] = MatchKey("exact", _number(text)[0] & full)
    if any(k is None for k in keys):
        raise StfUnsupported(f"{table}: an exact key field is missing")
    return [k for k in keys if k is not None]


def _params(engine: Engine, table: str, action: str, text: str) -> list[int]:
    given = dict(re.findall(r"(\w+)\s*:\s*([\w*]+)", text))
    out = []
    for name, width in engine.actions[action].params:
        if name not in given:
            raise StfUnsupported(f"{action}: parameter {name} missing")
        out.append(_number(given[name])[0] & ((1 << width) - 1))
    return out


def run(engine: Engine, stf: str) -> StfRun:
    """Apply the STF commands to `engine` in order; returns what came out."""
    result = StfRun()
    for raw in stf.splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        cmd, _, rest = line.partition(" ")
        rest = rest.strip()
        if cmd == "add":
            m = re.match(r"(\S+)\s+(?:(\d+)\s+)?(.*?)\s*([\w.$\[\]]+)\((.*)\)\s*(=\s*\S+)?$",
                         rest)
            if m is None:
                raise StfUnsupported(f"add: {rest}")
            table = _resolve(list(engine.tables), m.group(1), "table")
            action = _resolve(engine.tables[table].actions, m.group(4), "action")
            pairs = re.findall(r"([\w.$\[\]]+)\s*:\s*(\S+)", m.group(3))
            priority = int(m.group(2)) if m.group(2) else 1
            engine.add_entry(table, _keys(engine, table, pairs), action,
                             _params(engine, table, action, m.group(5)),
                             priority if engine.tables[table].needs_priority else 0)
        elif cmd == "setdefault":
            m = re.match(r"(\S+)\s+([\w.$]+)\((.*)\)$", rest)
            if m is None:
                raise StfUnsupported(f"setdefault: {rest}")
            table = _resolve(list(engine.tables), m.group(1), "table")
            action = _resolve(engine.tables[table].actions, m.group(2), "action")
            engine.set_default(table, action, _params(engine, table, action, m.group(3)))
        elif cmd == "packet":
            port, _, data = rest.partition(" ")
            for out in engine.process(bytes.fromhex("".join(data.split())), int(port)):
                result.got.setdefault(out.port, []).append(out.frame)
        elif cmd == "expect":
            port, _, data = rest.partition(" ")
            if not port:
                raise StfUnsupported("expect without a port")
            result.expected.setdefault(int(port), []).append(data.strip())
        elif cmd == "wait":
            continue
        else:
            raise StfUnsupported(f"STF command {cmd!r}")
    return result
