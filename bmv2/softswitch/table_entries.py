"""P4Runtime TableEntry writes and reads on the engine, with the spec's checks (§9.1).

Match fields (§9.1.1): an exact field is always given; a "don't care" ternary
(mask 0), LPM (prefix 0) or range (the full range) field must be omitted, not sent;
masked-off value bits must be 0. Actions (§9.1.2): one of the table's actions, in its
scope (a @defaultonly action only as the default entry, a @tableonly one never),
with every parameter exactly once. Default entries (§9.1.3): MODIFY only, no match,
no priority; an unset action resets the P4 program's default. `controller_metadata`
and `metadata` are kept with each entry and read back (§9.1); direct counters are
set through `counter_data` on INSERT and MODIFY (§9.1.7). Wildcard reads filter on
table, match, action, priority and metadata (§9.1.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finsy.proto import p4i, p4r

from bmv2.softswitch.engine import Engine, Entry, MatchKey
from bmv2.softswitch.p4info_index import (
    P4InfoError,
    P4InfoIndex,
    TableInfo,
    decode_int,
    encode_int,
)

INSERT, MODIFY, DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE

#: (table name, keys, priority) of an entry
EntryKey = tuple[str, tuple[MatchKey, ...], int]


@dataclass
class EntryMetadata:
    """The opaque cookies of installed entries and of modified default entries."""

    entries: dict[EntryKey, tuple[int, bytes]] = field(default_factory=dict)
    defaults: dict[str, tuple[int, bytes]] = field(default_factory=dict)


def _refuse(code: str, message: str) -> P4InfoError:
    return P4InfoError(code, message)


def match_keys(table: TableInfo, match: Any) -> list[MatchKey]:
    """The engine's keys of a `match` list; omitted fields become wildcards (§9.1.1)."""
    given: dict[int, p4r.FieldMatch] = {}
    for m in match:
        if m.field_id in given:
            raise _refuse("INVALID_ARGUMENT", f"{table.name}: match field id {m.field_id} "
                          "given twice")
        given[m.field_id] = m
    unknown = set(given) - {f.id for f in table.match_fields}
    if unknown:
        raise _refuse("INVALID_ARGUMENT",
                      f"{table.name}: unknown match field ids {sorted(unknown)}")
    keys: list[MatchKey] = []
    for f in table.match_fields:
        kind = p4i.MatchField.MatchType.Name(f.match_type).lower()
        m = given.get(f.id)
        what = f"{table.name}.{f.name}"
        if m is None:
            if kind == "exact":
                raise _refuse("INVALID_ARGUMENT", f"{what}: an exact field cannot be omitted")
            keys.append(_wildcard(kind, f.bitwidth))
            continue
        if m.WhichOneof("field_match_type") != kind:
            raise _refuse("INVALID_ARGUMENT", f"{what}: expected a {kind} match")
        keys.append(_key(kind, m, f.bitwidth, what))
    return keys


def _key(kind: str, m: p4r.FieldMatch, width: int, what: str) -> MatchKey:
    full = (1 << width) - 1
    if kind == "exact":
        return MatchKey("exact", decode_int(m.exact.value, width, what))
    if kind == "lpm":
        value = decode_int(m.lpm.value, width, what)
        if m.lpm.prefix_len == 0:
            raise _refuse("INVALID_ARGUMENT", f"{what}: a /0 prefix is \"don't care\": omit "
                          "the field")
        if not 0 < m.lpm.prefix_len <= width:
            raise _refuse("INVALID_ARGUMENT", f"{what}: prefix length {m.lpm.prefix_len} "
                          f"outside 1..{width}")
        if value & (full >> m.lpm.prefix_len):
            raise _refuse("INVALID_ARGUMENT", f"{what}: value has bits set past the "
                          f"/{m.lpm.prefix_len} prefix")
        return MatchKey("lpm", value, m.lpm.prefix_len)
    if kind == "ternary":
        value = decode_int(m.ternary.value, width, what)
        mask = decode_int(m.ternary.mask, width, what)
        if mask == 0:
            raise _refuse("INVALID_ARGUMENT", f"{what}: mask 0 is \"don't care\": omit the "
                          "field")
        if value & ~mask:
            raise _refuse("INVALID_ARGUMENT", f"{what}: value has bits set outside the mask")
        return MatchKey("ternary", value, mask)
    if kind == "range":
        low = decode_int(m.range.low, width, what)
        high = decode_int(m.range.high, width, what)
        if low > high:
            raise _refuse("INVALID_ARGUMENT", f"{what}: range low {low} > high {high}")
        if low == 0 and high == full:
            raise _refuse("INVALID_ARGUMENT", f"{what}: the full range is \"don't care\": "
                          "omit the field")
        return MatchKey("range", low, high)
    if kind == "optional":
        return MatchKey("optional", decode_int(m.optional.value, width, what), 1)
    raise _refuse("UNIMPLEMENTED", f"{what}: match kind {kind}")


def _wildcard(kind: str, bitwidth: int) -> MatchKey:
    if kind == "lpm":
        return MatchKey("lpm", 0, 0)
    if kind == "ternary":
        return MatchKey("ternary", 0, 0)
    if kind == "range":
        return MatchKey("range", 0, (1 << bitwidth) - 1)
    return MatchKey("optional", 0, None)


def check_priority(table: TableInfo, priority: int) -> None:
    """Non-zero for tables with a ternary, range or optional field, zero otherwise (§9.1)."""
    if table.needs_priority and priority <= 0:
        raise _refuse("INVALID_ARGUMENT", f"{table.name}: entries need a priority > 0")
    if not table.needs_priority and priority:
        raise _refuse("INVALID_ARGUMENT", f"{table.name}: entries take no priority")


def field_match(f: p4i.MatchField, key: MatchKey) -> p4r.FieldMatch | None:
    """The P4Runtime form of an engine key; None for a wildcard (omitted, §9.1.1)."""
    kind, width = key.kind, f.bitwidth
    if kind == "exact":
        return p4r.FieldMatch(field_id=f.id, exact=p4r.FieldMatch.Exact(
            value=encode_int(key.value, width)))
    if kind == "lpm":
        if not key.arg:
            return None
        return p4r.FieldMatch(field_id=f.id, lpm=p4r.FieldMatch.LPM(
            value=encode_int(key.value, width), prefix_len=key.arg))
    if kind == "ternary":
        if not key.arg:
            return None
        return p4r.FieldMatch(field_id=f.id, ternary=p4r.FieldMatch.Ternary(
            value=encode_int(key.value, width), mask=encode_int(key.arg or 0, width)))
    if kind == "range":
        if key.value == 0 and key.arg == (1 << width) - 1:
            return None
        return p4r.FieldMatch(field_id=f.id, range=p4r.FieldMatch.Range(
            low=encode_int(key.value, width), high=encode_int(key.arg or 0, width)))
    if key.arg is None:
        return None
    return p4r.FieldMatch(field_id=f.id, optional=p4r.FieldMatch.Optional(
        value=encode_int(key.value, width)))


def counter_values(data: p4r.CounterData, what: str) -> tuple[int, int]:
    """(packets, bytes) of a CounterData; INVALID_ARGUMENT for negative counts."""
    if data.packet_count < 0 or data.byte_count < 0:
        raise _refuse("INVALID_ARGUMENT", f"{what}: negative counts")
    return data.packet_count, data.byte_count


class TableEntries:
    """TableEntry updates and reads over one pipeline's engine."""

    def __init__(self, index: P4InfoIndex, engine: Engine, metadata: EntryMetadata) -> None:
        self.index = index
        self.engine = engine
        self.metadata = metadata

    # -- writes -------------------------------------------------------------------------------
    def write(self, kind: int, entry: p4r.TableEntry) -> None:
        """Apply one INSERT, MODIFY or DELETE of a table entry."""
        if kind not in (INSERT, MODIFY, DELETE):
            raise _refuse("INVALID_ARGUMENT", "update type is UNSPECIFIED")
        if entry.table_id == 0:
            raise _refuse("INVALID_ARGUMENT", "table_id 0 is not a table (§8.1.1)")
        table = self.index.table(entry.table_id)
        if entry.is_const:
            raise _refuse("INVALID_ARGUMENT", "is_const must be false in a write")
        if kind != DELETE:
            self._check_extras(table, entry)
        if entry.is_default_action:
            self._write_default(kind, table, entry)
            return
        if not table.match_fields:
            raise _refuse("INVALID_ARGUMENT", f"{table.name} has no match key: only its "
                          "default entry can be written")
        keys = match_keys(table, entry.match)
        check_priority(table, entry.priority)
        ident: EntryKey = (table.name, tuple(keys), entry.priority)
        if table.is_const_table and not (kind == MODIFY and not entry.HasField("action")):
            raise _refuse("PERMISSION_DENIED", f"{table.name} is a constant table")
        if kind == DELETE:
            self.engine.delete_entry(table.name, keys, entry.priority)
            self.metadata.entries.pop(ident, None)
            return
        counts = self._counter_data(table, entry)
        if kind == INSERT:
            if not entry.HasField("action"):
                raise _refuse("INVALID_ARGUMENT", "an INSERT needs an action")
            name, params = self._action(table, entry.action, default=False)
            self.engine.add_entry(table.name, keys, name, params, entry.priority)
            if counts is not None:
                self.engine.direct_counter_write(table.name, keys, entry.priority, *counts)
            self._keep_metadata(ident, entry)
            return
        # MODIFY: an unset action keeps the entry's action (and its cookies) (§9.1.2)
        if entry.HasField("action"):
            name, params = self._action(table, entry.action, default=False)
            self.engine.modify_entry(table.name, keys, name, params, entry.priority)
            self._keep_metadata(ident, entry)
        else:
            self.engine.entry(table.name, keys, entry.priority)  # NOT_FOUND if missing
        if counts is not None:
            self.engine.direct_counter_write(table.name, keys, entry.priority, *counts)

    def _keep_metadata(self, ident: EntryKey, entry: p4r.TableEntry) -> None:
        if entry.controller_metadata or entry.metadata:
            self.metadata.entries[ident] = (entry.controller_metadata, entry.metadata)
        else:
            self.metadata.entries.pop(ident, None)

    @staticmethod
    def _check_extras(table: TableInfo, entry: p4r.TableEntry) -> None:
        """Fields for features the table does not have (§9.1.7, §9.1.8)."""
        if (entry.idle_timeout_ns or entry.HasField("time_since_last_hit")) and (
                not table.idle_timeout or entry.is_default_action):
            raise _refuse("INVALID_ARGUMENT", f"{table.name}: no idle timeout for this entry")
        if entry.HasField("time_since_last_hit"):
            raise _refuse("INVALID_ARGUMENT", "time_since_last_hit must be unset in a write")
        if (entry.HasField("meter_config") or entry.HasField("meter_counter_data")) and (
                table.direct_meter_id is None):
            raise _refuse("INVALID_ARGUMENT", f"{table.name} has no direct meter")
        if entry.HasField("counter_data") and table.direct_counter_id is None:
            raise _refuse("INVALID_ARGUMENT", f"{table.name} has no direct counter")

    def _counter_data(self, table: TableInfo, entry: p4r.TableEntry) -> tuple[int, int] | None:
        if not entry.HasField("counter_data"):
            return None
        return counter_values(entry.counter_data, f"{table.name} counter_data")

    def _write_default(self, kind: int, table: TableInfo, entry: p4r.TableEntry) -> None:
        if kind != MODIFY:
            raise _refuse("INVALID_ARGUMENT", "the default entry can only be modified")
        if entry.match or entry.priority:
            raise _refuse("INVALID_ARGUMENT", "the default entry has no match and no priority")
        spec = self.engine.tables[table.name]
        if table.const_default_action_id or spec.const_default_action:
            raise _refuse("PERMISSION_DENIED", f"{table.name}: the default action is constant")
        if entry.HasField("counter_data"):
            raise _refuse("UNIMPLEMENTED", "the direct counter of a default entry")
        if not entry.HasField("action"):
            self.engine.set_default(table.name, spec.default_action, spec.default_params)
            self.metadata.defaults.pop(table.name, None)
            return
        name, params = self._action(table, entry.action, default=True)
        self.engine.set_default(table.name, name, params)
        if entry.controller_metadata or entry.metadata:
            self.metadata.defaults[table.name] = (entry.controller_metadata, entry.metadata)
        else:
            self.metadata.defaults.pop(table.name, None)

    def _action(self, table: TableInfo, action: p4r.TableAction, default: bool
                ) -> tuple[str, list[int]]:
        if action.WhichOneof("type") != "action":
            raise _refuse("INVALID_ARGUMENT", f"{table.name} is a direct table: its entries "
                          "take an action, not an action profile member, group or set")
        call = action.action
        if call.action_id not in table.action_ids:
            raise _refuse("INVALID_ARGUMENT", f"action id {call.action_id} is not an action "
                          f"of {table.name}")
        info = self.index.action(call.action_id)
        scope = table.action_scopes.get(call.action_id, p4i.ActionRef.TABLE_AND_DEFAULT)
        if default and scope == p4i.ActionRef.TABLE_ONLY:
            raise _refuse("PERMISSION_DENIED", f"{info.preamble.name} is @tableonly: not a "
                          "default action")
        if not default and scope == p4i.ActionRef.DEFAULT_ONLY:
            raise _refuse("PERMISSION_DENIED", f"{info.preamble.name} is @defaultonly: only "
                          "the default entry may use it")
        given: dict[int, bytes] = {}
        for p in call.params:
            if p.param_id in given:
                raise _refuse("INVALID_ARGUMENT", f"{info.preamble.name}: param id "
                              f"{p.param_id} given twice")
            given[p.param_id] = p.value
        if set(given) != {p.id for p in info.params}:
            raise _refuse("INVALID_ARGUMENT", f"action {info.preamble.name} takes params "
                          f"{[p.name for p in info.params]} (ids "
                          f"{[p.id for p in info.params]}), got ids {sorted(given)}")
        params = [decode_int(given[p.id], p.bitwidth, f"{info.preamble.name}.{p.name}")
                  for p in info.params]
        return info.preamble.name, params

    def locate(self, entry: p4r.TableEntry) -> tuple[TableInfo, list[MatchKey], int]:
        """The table, keys and priority an entity names (for its direct counter)."""
        table = self.index.table(entry.table_id)
        keys = match_keys(table, entry.match)
        check_priority(table, entry.priority)
        return table, keys, entry.priority

    # -- reads --------------------------------------------------------------------------------
    def read(self, query: p4r.TableEntry) -> list[p4r.TableEntry]:
        """The entries a (wildcard) query selects (§9.1.6)."""
        filters = (query.match or query.priority or query.HasField("action")
                   or query.controller_metadata or query.metadata)
        if query.table_id == 0:
            if filters:
                raise _refuse("INVALID_ARGUMENT", "a read of every table (table_id 0) takes "
                              "no other filter")
            tables = list(self.index.tables.values())
        else:
            tables = [self.index.table(query.table_id)]
            if query.HasField("time_since_last_hit") and not tables[0].idle_timeout:
                raise _refuse("INVALID_ARGUMENT", f"{tables[0].name} has no idle timeout")
        want_action = None
        if query.HasField("action"):
            if query.action.WhichOneof("type") != "action":
                raise _refuse("INVALID_ARGUMENT", "reads filter on an action id only")
            want_action = query.action.action.action_id
        out: list[p4r.TableEntry] = []
        for table in tables:
            if query.is_default_action:
                out.extend(self._default_entry(table))
                continue
            want = match_keys(table, query.match) if query.match else None
            for e in self.engine.entries(table.name):
                if want is not None and e.keys != want:
                    continue
                if query.priority and e.priority != query.priority:
                    continue
                msg = self._entry_msg(table, e, query.HasField("counter_data"))
                if want_action is not None and msg.action.action.action_id != want_action:
                    continue
                if query.controller_metadata and (
                        msg.controller_metadata != query.controller_metadata):
                    continue
                if query.metadata and msg.metadata != query.metadata:
                    continue
                out.append(msg)
        return out

    def _entry_msg(self, table: TableInfo, e: Entry, with_counter: bool) -> p4r.TableEntry:
        msg = p4r.TableEntry(table_id=table.id, priority=e.priority)
        action = self.action_msg(e.action, e.params)
        if action is not None:
            msg.action.CopyFrom(action)
        for f, key in zip(table.match_fields, e.keys, strict=True):
            fm = field_match(f, key)
            if fm is not None:
                msg.match.append(fm)
        cookie, metadata = self.metadata.entries.get((table.name, tuple(e.keys), e.priority),
                                                     (0, b""))
        msg.controller_metadata, msg.metadata = cookie, metadata
        if with_counter and table.direct_counter_id:
            msg.counter_data.CopyFrom(p4r.CounterData(packet_count=e.packets,
                                                      byte_count=e.bytes))
        return msg

    def _default_entry(self, table: TableInfo) -> list[p4r.TableEntry]:
        name, params = self.engine.get_default(table.name)
        msg = p4r.TableEntry(table_id=table.id, is_default_action=True)
        action = self.action_msg(name, params)
        if action is not None:
            msg.action.CopyFrom(action)
        msg.controller_metadata, msg.metadata = self.metadata.defaults.get(table.name,
                                                                           (0, b""))
        return [msg]

    def action_msg(self, name: str, params: list[int]) -> p4r.TableAction | None:
        """The P4Runtime form of an engine action; None for one the P4Info does not name."""
        try:
            info = self.index.action_by_name(name)
        except P4InfoError:
            return None
        return p4r.TableAction(action=p4r.Action(action_id=info.preamble.id, params=[
            p4r.Action.Param(param_id=p.id, value=encode_int(v, p.bitwidth))
            for p, v in zip(info.params, params, strict=True)]))
