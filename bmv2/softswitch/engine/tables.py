"""Match-action table storage and lookup with BMv2's semantics.

Exact tables are one dict (the generated packet code calls its `get` directly); LPM
tables a dict per prefix length, longest first; ternary/optional tables a tuple-space
search (a dict of masked values per distinct mask tuple, visited by falling maximum
priority); tables with a range key a list scanned in priority order. Larger priority
numbers win (P4Runtime); among equal priorities the earlier entry wins. Writes update
these structures in place (a bisect into short sorted lists); only the order of the
mask groups is re-sorted, lazily, at the next lookup after a group's top priority
changed.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bmv2.softswitch.engine.api import (
    ALREADY_EXISTS,
    INVALID_ARGUMENT,
    NOT_FOUND,
    RESOURCE_EXHAUSTED,
    ActionSpec,
    EngineError,
    Entry,
    MatchKey,
    TableSpec,
)

_and = operator.and_


class Rec:
    """An installed entry (or a default action) in the form the packet code reads:
    `aidx` is the action's index in the table, `params` a tuple."""

    __slots__ = ("keys", "action", "aidx", "params", "priority", "packets", "bytes",
                 "ident", "seq", "match")

    def __init__(self, keys: tuple[MatchKey, ...], action: str, aidx: int,
                 params: tuple[int, ...], priority: int, ident: Any = None, seq: int = 0,
                 match: tuple[tuple[int, int], ...] = ()) -> None:
        self.keys = keys
        self.action = action
        self.aidx = aidx
        self.params = params
        self.priority = priority
        self.packets = 0
        self.bytes = 0
        self.ident = ident
        self.seq = seq
        self.match = match

    def entry(self) -> Entry:
        return Entry(list(self.keys), self.action, list(self.params), self.priority,
                     self.packets, self.bytes)


@dataclass
class KeyLayout:
    """How a key field is matched: its JSON match kind and bitwidth."""

    name: str
    kind: str  # exact | lpm | ternary | range
    bitwidth: int


class TableState:
    """One table's entries, default action and lookup structures."""

    def __init__(self, spec: TableSpec, layout: list[KeyLayout], actions: list[ActionSpec],
                 default: tuple[str, list[int]] | None, const_entries: bool,
                 default_entry_const: bool) -> None:
        self.spec = spec
        self.name = spec.name
        self.layout = layout
        self.actions = actions
        self.action_index = {a.name: i for i, a in enumerate(actions)}
        self.initial_default = default
        self.const_default = spec.const_default_action
        self.default_entry_const = default_entry_const
        self.const_entries = const_entries
        self.size = spec.size
        kinds = {k.kind for k in layout}
        if not layout:
            self.mode = "none"
        elif "range" in kinds:
            self.mode = "range"
        elif "ternary" in kinds:
            self.mode = "ternary"
        elif "lpm" in kinds:
            self.mode = "lpm"
        else:
            self.mode = "exact"
        self.needs_priority = self.mode in ("range", "ternary")
        self.single = len(layout) == 1
        self._range_flags = tuple(k.kind == "range" for k in layout)
        self.by_ident: dict[Any, Rec] = {}
        self.exact: dict[Any, Rec] = {}
        self._lpm_index = next((i for i, k in enumerate(layout) if k.kind == "lpm"), -1)
        self._lpm: dict[int, dict[Any, Rec]] = {}
        self._levels: list[tuple[int, Any]] = []
        # ternary: mask tuple -> (masked values -> entries, best first); and the groups
        # as (top priority, masks, values dict) sorted by falling top priority
        self._by_mask: dict[tuple[int, ...], dict[tuple[int, ...], list[Rec]]] = {}
        self._tops: dict[tuple[int, ...], int] = {}  # best priority per mask group
        self._groups: list[tuple[int, tuple[int, ...], dict[tuple[int, ...], list[Rec]]]] = []
        self._scan: list[Rec] = []  # range: every entry, best first
        self._dirty = False  # the order of _groups must be recomputed
        self._seq = 0
        self.default = Rec((), "", -1, (), 0)
        self.lookup: Callable[[Any], Rec | None] = {
            "none": self._lookup_none, "exact": self._lookup_exact,
            "lpm": self._lookup_lpm1 if self.single else self._lookup_lpm,
            "ternary": self._lookup_ternary, "range": self._lookup_range}[self.mode]
        self.reset()

    # -- control plane -----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every entry and restore the JSON's default action."""
        self.by_ident.clear()
        self.exact.clear()
        self._lpm.clear()
        self._levels.clear()
        self._by_mask.clear()
        self._tops.clear()
        self._groups.clear()
        self._scan.clear()
        self._dirty = False
        self._seq = 0
        if self.initial_default is None:
            self.default = Rec((), "", -1, (), 0)
        else:
            name, params = self.initial_default
            self.default = Rec((), name, self.action_index[name], tuple(params), 0)

    def _err(self, code: str, message: str) -> EngineError:
        return EngineError(code, f"{self.name}: {message}")

    def check_action(self, action: str, params: list[int]) -> tuple[int, tuple[int, ...]]:
        """The table's index of `action` and its params as a tuple, validated."""
        aidx = self.action_index.get(action)
        if aidx is None:
            raise self._err(INVALID_ARGUMENT, f"action {action!r} is not an action of the table"
                            f" (allowed: {', '.join(self.action_index)})")
        spec = self.actions[aidx]
        if len(params) != len(spec.params):
            raise self._err(INVALID_ARGUMENT, f"action {action} takes {len(spec.params)} params,"
                            f" {len(params)} given")
        for value, (pname, width) in zip(params, spec.params, strict=True):
            if not isinstance(value, int) or not 0 <= value < (1 << width):
                raise self._err(INVALID_ARGUMENT, f"param {action}.{pname}: {value!r} does not"
                                f" fit in {width} bits")
        return aidx, tuple(params)

    def _compile_keys(self, keys: list[MatchKey], priority: int
                      ) -> tuple[Any, tuple[tuple[int, int], ...]]:
        """Validate `keys` and return (identity, per-key (value, mask) or (low, high))."""
        if self.const_entries:
            raise self._err(INVALID_ARGUMENT, "the table's entries are constant (set in the P4"
                            " program)")
        if self.mode == "none":
            raise self._err(INVALID_ARGUMENT, "the table has no key: only its default action"
                            " can be set")
        if len(keys) != len(self.layout):
            raise self._err(INVALID_ARGUMENT, f"{len(keys)} key fields given, the table has"
                            f" {len(self.layout)}")
        if self.needs_priority:
            if not isinstance(priority, int) or priority < 0 or priority >= 1 << 31:
                raise self._err(INVALID_ARGUMENT, f"bad priority {priority!r}")
        elif priority != 0:
            raise self._err(INVALID_ARGUMENT, "entries of this table take no priority")
        match: list[tuple[int, int]] = []
        for key, lay in zip(keys, self.layout, strict=True):
            match.append(_compile_key(key, lay, self.name))
        return (tuple(match), priority), tuple(match)

    def add(self, keys: list[MatchKey], action: str, params: list[int], priority: int = 0
            ) -> None:
        ident, match = self._compile_keys(keys, priority)
        aidx, ptuple = self.check_action(action, params)
        if ident in self.by_ident:
            raise self._err(ALREADY_EXISTS, "an entry with these keys"
                            + (" and priority" if self.needs_priority else "") + " exists")
        if len(self.by_ident) >= self.size:
            raise self._err(RESOURCE_EXHAUSTED, f"the table is full ({self.size} entries)")
        self._seq += 1
        rec = Rec(tuple(keys), action, aidx, ptuple, priority, ident, self._seq, match)
        self._insert(rec)

    def insert_const(self, keys: list[MatchKey], action: str, params: list[int],
                     priority: int) -> None:
        """An entry the JSON declares (const entries), bypassing immutability."""
        const, self.const_entries = self.const_entries, False
        try:
            self.add(keys, action, params, priority)
        finally:
            self.const_entries = const

    def _insert(self, rec: Rec) -> None:
        self.by_ident[rec.ident] = rec
        match = rec.match
        if self.mode == "exact":
            self.exact[match[0][0] if self.single else tuple(v for v, _ in match)] = rec
        elif self.mode == "lpm":
            i = self._lpm_index
            plen = bin(match[i][1]).count("1")
            level = self._lpm.get(plen)
            if level is None:
                level = self._lpm[plen] = {}
                self._rebuild_levels()
            level[self._lpm_key(match)] = rec
        elif self.mode == "range":
            bisect.insort(self._scan, rec, key=_rank)
        else:
            masks = tuple(m for _, m in match)
            values = tuple(v for v, _ in match)
            group = self._by_mask.setdefault(masks, {})
            bisect.insort(group.setdefault(values, []), rec, key=_rank)
            top = self._tops.get(masks)
            if top is None or rec.priority > top:
                self._tops[masks] = rec.priority
                self._dirty = True

    def _lpm_key(self, match: tuple[tuple[int, int], ...]) -> Any:
        if self.single:
            return match[0][0]
        return tuple(v for v, _ in match)

    def _rebuild_levels(self) -> None:
        i = self._lpm_index
        width = self.layout[i].bitwidth
        full = (1 << width) - 1
        self._levels[:] = [(full ^ (full >> plen), self._lpm[plen])
                           for plen in sorted(self._lpm, reverse=True)]

    def _find(self, keys: list[MatchKey], priority: int) -> Rec:
        ident, _ = self._compile_keys(keys, priority)
        rec = self.by_ident.get(ident)
        if rec is None:
            raise self._err(NOT_FOUND, "no entry with these keys"
                            + (" and priority" if self.needs_priority else ""))
        return rec

    def modify(self, keys: list[MatchKey], action: str, params: list[int], priority: int = 0
               ) -> None:
        rec = self._find(keys, priority)
        aidx, ptuple = self.check_action(action, params)
        # Keep the installed Rec (lookup structures point at it) and its counters.
        rec.action, rec.aidx, rec.params = action, aidx, ptuple

    def delete(self, keys: list[MatchKey], priority: int = 0) -> None:
        rec = self._find(keys, priority)
        del self.by_ident[rec.ident]
        match = rec.match
        if self.mode == "exact":
            del self.exact[match[0][0] if self.single else tuple(v for v, _ in match)]
        elif self.mode == "lpm":
            plen = bin(match[self._lpm_index][1]).count("1")
            level = self._lpm[plen]
            del level[self._lpm_key(match)]
            if not level:
                del self._lpm[plen]
                self._rebuild_levels()
        elif self.mode == "range":
            del self._scan[bisect.bisect_left(self._scan, _rank(rec), key=_rank)]
        else:
            masks = tuple(m for _, m in match)
            values = tuple(v for v, _ in match)
            group = self._by_mask[masks]
            recs = group[values]
            recs.remove(rec)
            if not recs:
                del group[values]
            if not group:
                del self._by_mask[masks]
                del self._tops[masks]
                self._dirty = True
            elif rec.priority == self._tops[masks]:
                self._tops[masks] = max(r[0].priority for r in group.values())
                self._dirty = True

    def find(self, keys: list[MatchKey], priority: int = 0) -> Rec:
        """The installed entry with these keys; NOT_FOUND if there is none."""
        return self._find(keys, priority)

    def entries(self) -> list[Entry]:
        return [rec.entry() for rec in self.by_ident.values()]

    def set_default(self, action: str, params: list[int]) -> None:
        aidx, ptuple = self.check_action(action, params)
        current = self.default
        if (self.const_default or self.default_entry_const) and (
                action != current.action or ptuple != current.params):
            raise self._err(INVALID_ARGUMENT, f"the default action is constant"
                            f" ({current.action or 'none'})")
        self.default = Rec((), action, aidx, ptuple, 0)

    def get_default(self) -> tuple[str, list[int]]:
        return self.default.action, list(self.default.params)

    # -- lookups (called by the generated packet code) -------------------------------------------
    def _lookup_none(self, values: Any) -> Rec | None:
        return None

    def _lookup_exact(self, values: Any) -> Rec | None:
        return self.exact.get(values)

    def _lookup_lpm1(self, value: int) -> Rec | None:
        for mask, level in self._levels:
            rec = level.get(value & mask)
            if rec is not None:
                return rec
        return None

    def _lookup_lpm(self, values: tuple[int, ...]) -> Rec | None:
        i = self._lpm_index
        head, lpm, tail = values[:i], values[i], values[i + 1:]
        for mask, level in self._levels:
            rec = level.get(head + (lpm & mask,) + tail)
            if rec is not None:
                return rec
        return None

    def _order_groups(self) -> None:
        """Sort the mask groups by their best entry's priority, highest first."""
        self._dirty = False
        groups = [(self._tops[m], m, g) for m, g in self._by_mask.items()]
        groups.sort(key=lambda t: -t[0])
        self._groups[:] = groups

    def _lookup_ternary(self, values: Any) -> Rec | None:
        if self._dirty:
            self._order_groups()
        if self.single:
            values = (values,)
        best: Rec | None = None
        for top, masks, group in self._groups:
            if best is not None and top < best.priority:
                break
            recs = group.get(tuple(map(_and, values, masks)))
            if recs:
                rec = recs[0]
                if best is None or rec.priority > best.priority or (
                        rec.priority == best.priority and rec.seq < best.seq):
                    best = rec
        return best

    def _lookup_range(self, values: Any) -> Rec | None:
        if self.single:
            values = (values,)
        kinds = self._range_flags
        for rec in self._scan:
            for v, (a, b), is_range in zip(values, rec.match, kinds, strict=True):
                if is_range:
                    if not a <= v <= b:
                        break
                elif v & b != a:
                    break
            else:
                return rec
        return None


def _compile_key(key: MatchKey, lay: KeyLayout, table: str) -> tuple[int, int]:
    """(value, mask) for exact/lpm/ternary/optional, (low, high) for range."""
    where = f"{table}.{lay.name}"
    if not isinstance(key, MatchKey):
        raise EngineError(INVALID_ARGUMENT, f"{where}: expected a MatchKey, got {key!r}")
    width = lay.bitwidth
    full = (1 << width) - 1
    value, arg, kind = key.value, key.arg, key.kind
    if not isinstance(value, int) or not 0 <= value <= full:
        raise EngineError(INVALID_ARGUMENT, f"{where}: value {value!r} does not fit in"
                          f" {width} bits")
    allowed = {lay.kind, "optional"} if lay.kind == "ternary" else {lay.kind}
    if kind not in allowed:
        raise EngineError(INVALID_ARGUMENT, f"{where}: a {lay.kind} field, got a {kind} match")
    if kind == "exact":
        if arg is not None:
            raise EngineError(INVALID_ARGUMENT, f"{where}: an exact match takes no arg")
        return value, full
    if kind == "optional":
        if arg is None:
            return 0, 0
        return value, full
    if not isinstance(arg, int):
        raise EngineError(INVALID_ARGUMENT, f"{where}: a {kind} match needs an int arg")
    if kind == "lpm":
        if not 0 <= arg <= width:
            raise EngineError(INVALID_ARGUMENT, f"{where}: prefix length {arg} outside"
                              f" 0..{width}")
        mask = full ^ (full >> arg)
        if value & ~mask:
            raise EngineError(INVALID_ARGUMENT, f"{where}: value has bits set past the"
                              f" /{arg} prefix")
        return value, mask
    if kind == "ternary":
        if not 0 <= arg <= full:
            raise EngineError(INVALID_ARGUMENT, f"{where}: mask does not fit in {width} bits")
        if value & ~arg:
            raise EngineError(INVALID_ARGUMENT, f"{where}: value has bits set outside the mask")
        return value, arg
    # range
    if not value <= arg <= full:
        raise EngineError(INVALID_ARGUMENT, f"{where}: range {value}..{arg} is empty or does"
                          f" not fit in {width} bits")
    return value, arg


def _rank(rec: Rec) -> tuple[int, int]:
    """Sort key: higher priority first, then the earlier entry."""
    return (-rec.priority, rec.seq)
