"""Compile a BMv2 JSON (p4c's bmv2 backend, v1model) into one Python function.

The whole v1model flow of a packet (parser, verify checksum, ingress, egress, compute
checksum, deparser) becomes the source of a single function in which every header field
is a local variable and every action is inlined where a table or action call runs it.
The function is a generator that pauses between ingress and egress, where simple_switch
has its traffic manager, so that a caller can queue the packet and run egress when the
packet leaves its queue (`Engine.ingress`, `Engine.egress`).
Per packet nothing looks at the JSON: the function reads fields with `struct`, walks the
control graph in a precomputed order, and asks the tables (dicts) for entries. The
generated source is kept (`Program.source`) so that it can be read when debugging.

Anything the JSON asks for that this module does not implement raises
`UnsupportedConstruct` at load, naming the construct; nothing is skipped silently.
"""

from __future__ import annotations

import json
import keyword
import logging
import random
import re
import struct
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from bmv2.softswitch.engine import hashes
from bmv2.softswitch.engine.api import (
    ActionSpec,
    CounterSpec,
    KeySpec,
    Output,
    RegisterSpec,
    TableSpec,
    UnsupportedConstruct,
)
from bmv2.softswitch.engine.tables import KeyLayout, TableState

log = logging.getLogger("mp-switch.p4")

DROP_PORT = 511  # simple_switch's default --drop-port
CORE_ERRORS = ["NoError", "PacketTooShort", "NoMatch", "StackOutOfBounds", "HeaderTooShort",
               "ParserTimeout", "ParserInvalidArgument"]
MATCH_KINDS = ("exact", "lpm", "ternary", "range", "valid")
END = -1
# Names the packet function uses for itself; generated names avoid them.
_RESERVED = {"process", "frame", "ingress_port", "flen", "ilen", "plen", "pos", "perr", "cerr",
             "trunc", "st", "nx", "ex", "e", "a", "hit", "port", "prio", "_div", "_mod", "int",
             "min", "max", "len"}

# Primitives the engine executes; everything else is refused at load.
PRIMITIVES = {
    "assign", "modify_field", "assign_header", "copy_header", "assign_union", "add_header",
    "remove_header", "mark_to_drop", "drop", "exit", "no_op", "register_read",
    "register_write", "count", "modify_field_with_hash_based_offset",
    "modify_field_rng_uniform", "truncate", "log_msg", "assert", "assume", "_jump",
    "_jump_if_zero", "push", "pop", "assign_header_stack",
}

_UNSUPPORTED_HINT = {
    "clone_ingress_pkt_to_egress": "cloning",
    "clone_egress_pkt_to_egress": "cloning",
    "resubmit": "resubmit",
    "recirculate": "recirculation",
    "generate_digest": "digests",
    "execute_meter": "meters",
}


def load_json(bmv2_json: dict[str, Any] | bytes | str) -> dict[str, Any]:
    """The JSON as a dict, from a dict, bytes or str."""
    if isinstance(bmv2_json, dict):
        return bmv2_json
    if isinstance(bmv2_json, bytes | bytearray | memoryview):
        bmv2_json = bytes(bmv2_json).decode("utf-8")
    if not isinstance(bmv2_json, str):
        raise TypeError(f"a BMv2 JSON is a dict, bytes or str, not {type(bmv2_json).__name__}")
    data = json.loads(bmv2_json)
    if not isinstance(data, dict):
        raise ValueError("a BMv2 JSON is a JSON object")
    return data


def _ident(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "_" + name
    return name


def _hex(value: str | int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    number = int(text, 16) if text.lower().startswith("0x") else int(text)
    return -number if neg else number


@dataclass
class Header:
    """A header (or metadata) instance and the locals that hold it."""

    name: str
    type_name: str
    metadata: bool
    fields: list[tuple[str, int, bool]]
    vars: dict[str, str]
    valid: str  # local holding validity, or "True" for metadata
    nbits: int
    union_siblings: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.nbits // 8


@dataclass
class Ex:
    """A compiled expression: Python source, its kind and what is known about its value."""

    code: str
    kind: str = "data"  # data | bool | header | union | stack | string
    bits: int | None = None  # the value is known to be in [0, 2**bits)
    const: int | bool | None = None
    valid_of: str | None = None  # for "$valid$" reads: the validity local
    name: str | None = None  # header/union/stack name
    # kind "hdrsel": a header chosen at run time, as (condition, header name) pairs tried
    # in order (condition None: otherwise); no pair taken means an out-of-range index
    cases: list[tuple[str | None, str]] | None = None


@dataclass
class Ctx:
    """Where code is being compiled: for messages, and how action data is read."""

    where: str
    params: list[Ex] = field(default_factory=list)
    in_parser: bool = False


class Out:
    """Lines of generated source."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, ind: int, line: str) -> None:
        self.lines.append("    " * ind + line)


@dataclass
class HeaderLayout:
    """How a header type is read and written with one struct call."""

    nbytes: int
    fmt: str
    # per piece-group: list of (field index, shift in group, width) and the group's pieces
    groups: list[tuple[list[tuple[int, int, int]], list[tuple[str, int]]]]


@dataclass
class Program:
    """A compiled program: the packet function and the state it reads.

    `process(frame, ingress_port)` is a generator function: the first step runs the
    parser and ingress and yields (egress port, priority), or returns [] when ingress
    dropped the packet; the second step runs egress and the deparser and returns the
    outputs (StopIteration.value: [] or one `Output`)."""

    process: Callable[[bytes, int], Generator[tuple[int, int], None, list[Output]]]
    source: str
    tables: dict[str, TableState]
    table_specs: dict[str, TableSpec]
    actions: dict[str, ActionSpec]
    registers: dict[str, RegisterSpec]
    register_cells: dict[str, list[int]]
    counters: dict[str, CounterSpec]
    counter_cells: dict[str, tuple[list[int], list[int]]]
    const_entries: list[Callable[[], None]]


class Compiler:
    """One BMv2 JSON compiled into a `Program`; `compile()` does the work."""

    def __init__(self, j: dict[str, Any]) -> None:
        self.j = j
        self.ns: dict[str, Any] = {"_div": _div, "_mod": _mod}
        self._names: set[str] = set(_RESERVED)
        self._tmp = 0
        self._saw_exit = False

    # -- helpers ---------------------------------------------------------------------------------
    def unsupported(self, construct: str, where: str = "") -> UnsupportedConstruct:
        return UnsupportedConstruct(construct, where)

    def fresh(self, base: str) -> str:
        """A new unique Python identifier derived from `base`."""
        name = _ident(base)
        candidate, n = name, 1
        while candidate in self._names:
            n += 1
            candidate = f"{name}_{n}"
        self._names.add(candidate)
        return candidate

    def const(self, base: str, value: Any) -> str:
        """Put `value` in the function's globals under a fresh name and return the name."""
        name = self.fresh(base)
        self.ns[name] = value
        return name

    def tmp(self) -> str:
        self._tmp += 1
        return f"_t{self._tmp}"

    # -- top level -------------------------------------------------------------------------------
    def compile(self) -> Program:
        j = self.j
        version = j.get("__meta__", {}).get("version")
        if version and version[0] != 2:
            raise self.unsupported(f"BMv2 JSON format version {version[0]}.{version[1]}"
                                   " (2.x expected)")
        for key in ("header_types", "headers", "parsers", "deparsers", "actions",
                    "pipelines"):
            if key not in j:
                raise KeyError(f"BMv2 JSON without {key!r}")
        self._refuse_unsupported_sections()
        self._headers()
        self._errors()
        self._std_metadata()
        self._registers_counters()
        self._calculations = {c["name"]: c for c in j.get("calculations", [])}
        self._actions_by_id = {a["id"]: a for a in j["actions"]}
        self._validate_actions()
        self._tables()
        source = self._emit_process()
        code = compile(source, "<bmv2-engine>", "exec")
        ns = dict(self.ns)
        exec(code, ns)  # noqa: S102 - our own generated source
        return Program(
            process=ns["process"], source=source, tables=self.tables,
            table_specs={n: t.spec for n, t in self.tables.items()},
            actions=self.action_specs, registers=self.register_specs,
            register_cells=self.register_cells, counters=self.counter_specs,
            counter_cells=self.counter_cells, const_entries=self.const_loaders)

    def _refuse_unsupported_sections(self) -> None:
        j = self.j
        for key, what in (("meter_arrays", "meter array"), ("learn_lists", "learn list"),
                          ("extern_instances", "extern instance"),
                          ("header_union_stacks", "header union stack")):
            for item in j.get(key) or []:
                raise self.unsupported(f"{what} {item.get('name')!r}")
        for item in j.get("parse_vsets") or []:
            raise self.unsupported(f"parser value set {item.get('name')!r}")
        for p in j["pipelines"]:
            for prof in p.get("action_profiles") or []:
                raise self.unsupported(f"action profile {prof.get('name')!r}", p["name"])
        if len(j["parsers"]) != 1:
            raise self.unsupported(f"{len(j['parsers'])} parsers (v1model has one)")
        if len(j["deparsers"]) != 1:
            raise self.unsupported(f"{len(j['deparsers'])} deparsers (v1model has one)")
        names = {p["name"] for p in j["pipelines"]}
        if names != {"ingress", "egress"}:
            raise self.unsupported(f"pipelines {sorted(names)} (v1model has ingress and egress)")

    # -- headers ---------------------------------------------------------------------------------
    def _headers(self) -> None:
        j = self.j
        types: dict[str, list[tuple[str, int, bool]]] = {}
        for ht in j["header_types"]:
            fields = []
            for f in ht["fields"]:
                name, width = f[0], f[1]
                signed = bool(f[2]) if len(f) > 2 else False
                if width == "*" or not isinstance(width, int):
                    raise self.unsupported(f"varbit field '{ht['name']}.{name}'")
                fields.append((name, width, signed))
            types[ht["name"]] = fields
        self.header_types = types
        self.headers: dict[str, Header] = {}
        self.headers_by_id: dict[int, Header] = {}
        for h in j["headers"]:
            fields = types[h["header_type"]]
            metadata = bool(h.get("metadata"))
            vars_ = {f: self.fresh(f"{h['name']}_{f}") for f, _, _ in fields}
            valid = "True" if metadata else self.fresh(f"valid_{h['name']}")
            hdr = Header(h["name"], h["header_type"], metadata, fields, vars_, valid,
                         sum(w for _, w, _ in fields))
            self.headers[h["name"]] = hdr
            self.headers_by_id[h["id"]] = hdr
        self.stacks = {s["name"]: [self.headers_by_id[i].name for i in s["header_ids"]]
                       for s in j.get("header_stacks") or []}
        # BMv2's per-stack "next" index (how many elements were extracted/pushed)
        self.stack_next = {name: self.fresh(f"next_{name}") for name in self.stacks}
        self.unions: dict[str, list[str]] = {}
        for u in j.get("header_unions") or []:
            members = [self.headers_by_id[i].name for i in u["header_ids"]]
            self.unions[u["name"]] = members
            for m in members:
                self.headers[m].union_siblings = [x for x in members if x != m]
        self.aliases = {a[0]: tuple(a[1]) for a in j.get("field_aliases") or []}
        self._layouts: dict[str, HeaderLayout] = {}

    def layout(self, hdr: Header) -> HeaderLayout:
        """The struct layout of a header type (packet headers must be whole bytes)."""
        lay = self._layouts.get(hdr.type_name)
        if lay is not None:
            return lay
        if hdr.nbits % 8:
            raise self.unsupported(f"header type {hdr.type_name!r} of {hdr.nbits} bits (not a"
                                   " whole number of bytes)")
        groups: list[tuple[list[tuple[int, int, int]], list[tuple[str, int]]]] = []
        current: list[tuple[int, int]] = []
        bits = 0
        fmt = "!"
        for i, (_, width, _) in enumerate(hdr.fields):
            current.append((i, width))
            bits += width
            if bits % 8 == 0:
                total = bits
                members = []
                offset = 0
                for idx, w in current:
                    members.append((idx, total - offset - w, w))
                    offset += w
                pieces = _pieces(total // 8)
                fmt += "".join(code for code, _ in pieces)
                groups.append((members, pieces))
                current, bits = [], 0
        lay = HeaderLayout(hdr.nbytes, fmt, groups)
        self._layouts[hdr.type_name] = lay
        return lay

    def _errors(self) -> None:
        errors = {name: value for name, value in self.j.get("errors") or []}
        used = set(errors.values())
        for i, name in enumerate(CORE_ERRORS):
            if name not in errors:
                value = i if i not in used else max(used | {0}) + 1
                errors[name] = value
                used.add(value)
        self.errors = errors

    def _std_metadata(self) -> None:
        std = self.headers.get("standard_metadata")
        if std is None or "egress_spec" not in std.vars:
            raise self.unsupported("architecture without v1model's standard_metadata (only"
                                   " v1model programs run here)")
        self.std = std

        def var(name: str) -> str | None:
            alias = self.aliases.get(f"intrinsic_metadata.{name}") or self.aliases.get(
                f"queueing_metadata.{name}")
            if alias is not None:
                hdr = self.headers.get(alias[0])
                if hdr is not None and alias[1] in hdr.vars:
                    return hdr.vars[alias[1]]
            return std.vars.get(name)

        self.sm = {name: var(name) for name in (
            "ingress_port", "egress_spec", "egress_port", "instance_type", "packet_length",
            "parser_error", "checksum_error", "priority", "mcast_grp",
            "ingress_global_timestamp", "egress_global_timestamp", "enq_timestamp",
            "deq_timedelta", "enq_qdepth", "deq_qdepth", "egress_rid")}
        self.sm_width = {f: w for f, w, _ in std.fields}
        self._mcast_var = self.sm["mcast_grp"]
        self._mcast_copied = False  # written from another field: checked per packet

    def field_ref(self, ref: list[str], ctx: Ctx) -> tuple[Header, str]:
        hname, fname = ref[0], ref[1]
        hdr = self.headers.get(hname)
        if hdr is None:
            alias = self.aliases.get(f"{hname}.{fname}")
            if alias is not None:
                hname, fname = alias
                hdr = self.headers.get(hname)
        if hdr is None:
            if hname in self.stacks:
                raise self.unsupported(f"header stack access '{hname}.{fname}'", ctx.where)
            raise KeyError(f"{ctx.where}: unknown header {hname!r}")
        if fname != "$valid$" and fname not in hdr.vars:
            raise KeyError(f"{ctx.where}: unknown field {hname}.{fname}")
        return hdr, fname

    def field_info(self, hdr: Header, fname: str) -> tuple[int, bool]:
        for f, w, s in hdr.fields:
            if f == fname:
                return w, s
        raise KeyError(fname)

    # -- registers and counters -----------------------------------------------------------------
    def _registers_counters(self) -> None:
        self.register_specs: dict[str, RegisterSpec] = {}
        self.register_cells: dict[str, list[int]] = {}
        self.register_vars: dict[str, str] = {}
        for r in self.j.get("register_arrays") or []:
            spec = RegisterSpec(r["name"], int(r["size"]), int(r["bitwidth"]))
            cells = [0] * spec.size
            self.register_specs[spec.name] = spec
            self.register_cells[spec.name] = cells
            self.register_vars[spec.name] = self.const(f"R_{spec.name}", cells)
        self.counter_specs: dict[str, CounterSpec] = {}
        self.counter_cells: dict[str, tuple[list[int], list[int]]] = {}
        self.counter_vars: dict[str, tuple[str, str]] = {}
        self.direct_counters: dict[str, str] = {}  # table -> counter
        for c in self.j.get("counter_arrays") or []:
            if c.get("is_direct"):
                table = c.get("binding")
                spec = CounterSpec(c["name"], 0, table)
                self.direct_counters[table] = c["name"]
                self.counter_specs[spec.name] = spec
                continue
            spec = CounterSpec(c["name"], int(c["size"]), None)
            cells = ([0] * spec.size, [0] * spec.size)
            self.counter_specs[spec.name] = spec
            self.counter_cells[spec.name] = cells
            self.counter_vars[spec.name] = (self.const(f"CP_{spec.name}", cells[0]),
                                            self.const(f"CB_{spec.name}", cells[1]))

    # -- expressions -----------------------------------------------------------------------------
    def value(self, tv: Any, ctx: Ctx) -> Ex:
        """Compile a BMv2 type/value object."""
        if tv is None:
            raise ValueError(f"{ctx.where}: missing operand")
        if isinstance(tv, bool):
            return Ex("True" if tv else "False", "bool", const=tv)
        if isinstance(tv, int):
            return Ex(str(tv), bits=tv.bit_length() if tv >= 0 else None, const=tv)
        kind = tv.get("type")
        v = tv.get("value")
        if kind == "expression":
            if isinstance(v, dict) and "op" in v:
                return self.op(v, ctx)
            return self.value(v, ctx)
        if kind is None and "op" in tv:
            return self.op(tv, ctx)
        if kind == "field":
            return self.field_value(v, ctx)
        if kind == "hexstr":
            n = _hex(v)
            return Ex(str(n), bits=n.bit_length() if n >= 0 else None, const=n)
        if kind == "bool":
            return Ex("True" if v else "False", "bool", const=bool(v))
        if kind in ("runtime_data", "local"):
            if not isinstance(v, int) or not 0 <= v < len(ctx.params):
                raise ValueError(f"{ctx.where}: action data index {v!r} out of range")
            return ctx.params[v]
        if kind == "header":
            if v in self.unions:
                return Ex("", "union", name=v)
            if v not in self.headers:
                raise KeyError(f"{ctx.where}: unknown header {v!r}")
            return Ex("", "header", name=v)
        if kind == "header_union":
            return Ex("", "union", name=v)
        if kind == "header_stack":
            if v not in self.stacks:
                raise KeyError(f"{ctx.where}: unknown header stack {v!r}")
            return Ex("", "stack", name=v)
        if kind == "stack_field":
            return self.access_field(self.last_of(v[0], ctx), v[1], ctx)
        if kind == "string":
            return Ex(repr(v), "string")
        if kind == "lookahead":
            if not ctx.in_parser:
                raise self.unsupported("lookahead outside a parser", ctx.where)
            return self.lookahead(int(v[0]), int(v[1]))
        raise self.unsupported(f"operand type {kind!r}", ctx.where)

    def field_value(self, ref: list[str], ctx: Ctx) -> Ex:
        hdr, fname = self.field_ref(ref, ctx)
        if fname == "$valid$":
            valid = hdr.valid
            return Ex(f"(1 if {valid} else 0)", bits=1, valid_of=valid,
                      const=1 if valid == "True" else None)
        width, signed = self.field_info(hdr, fname)
        return Ex(hdr.vars[fname], bits=None if signed else width)

    def data(self, tv: Any, ctx: Ctx) -> Ex:
        ex = self.value(tv, ctx)
        if ex.kind == "bool":
            if ex.const is not None:
                return Ex("1" if ex.const else "0", bits=1, const=int(bool(ex.const)))
            return Ex(f"(1 if {ex.code} else 0)", bits=1)
        if ex.kind != "data":
            raise self.unsupported(f"a {ex.kind} used as a value", ctx.where)
        return ex

    def boolean(self, tv: Any, ctx: Ctx) -> Ex:
        ex = self.value(tv, ctx)
        if ex.kind == "data":
            if ex.valid_of is not None:
                return Ex(ex.valid_of, "bool")
            if ex.const is not None:
                return Ex(str(bool(ex.const)), "bool", const=bool(ex.const))
            return Ex(f"({ex.code} != 0)", "bool")
        if ex.kind != "bool":
            raise self.unsupported(f"a {ex.kind} used as a condition", ctx.where)
        return ex

    def header_valid(self, ex: Ex, ctx: Ctx) -> str:
        if ex.kind == "header":
            return self.headers[ex.name].valid
        if ex.kind == "union":
            members = [self.headers[m].valid for m in self.unions[ex.name]]
            return "(" + " or ".join(members) + ")" if members else "False"
        if ex.kind == "hdrsel":
            return _chain([(c, self.headers[h].valid) for c, h in ex.cases or []], "False")
        raise self.unsupported(f"validity of a {ex.kind}", ctx.where)

    # -- header stacks ---------------------------------------------------------------------------
    def stack_element(self, stack: str, index: Ex, ctx: Ctx) -> Ex:
        """stack[index]: a static header for a constant index, else a run-time choice."""
        members = self.stacks[stack]
        if index.const is not None:
            i = int(index.const)
            if not 0 <= i < len(members):
                raise ValueError(f"{ctx.where}: {stack}[{i}] is out of bounds")
            return Ex("", "header", name=members[i])
        code = index.code if index.code.isidentifier() else f"({index.code})"
        return Ex("", "hdrsel", cases=[(f"{code} == {i}", m) for i, m in enumerate(members)])

    def last_of(self, stack: str, ctx: Ctx) -> Ex:
        """stack.last: the element before `next`."""
        if stack not in self.stacks:
            raise self.unsupported(f"stack_field on {stack!r} (header union stacks)", ctx.where)
        nxt = self.stack_next[stack]
        return Ex("", "hdrsel", cases=[(f"{nxt} == {i + 1}", m)
                                       for i, m in enumerate(self.stacks[stack])])

    def access_field(self, hdr_ex: Ex, field: str | int, ctx: Ctx) -> Ex:
        """A field of a header expression (static or chosen at run time), read."""
        if hdr_ex.kind == "header":
            hdr = self.headers[hdr_ex.name]
            fname = hdr.fields[field][0] if isinstance(field, int) else field
            return self.field_value([hdr.name, fname], ctx)
        if hdr_ex.kind != "hdrsel":
            raise self.unsupported(f"field access on a {hdr_ex.kind}", ctx.where)
        alternatives = []
        bits: int | None = 0
        for cond, name in hdr_ex.cases or []:
            ex = self.access_field(Ex("", "header", name=name), field, ctx)
            alternatives.append((cond, ex.code))
            bits = None if bits is None or ex.bits is None else max(bits, ex.bits)
        return Ex(_chain(alternatives, "0"), bits=bits)

    def header_choice(self, ex: Ex, ctx: Ctx) -> list[tuple[str | None, Header]]:
        """(condition, header) alternatives of a header expression."""
        if ex.kind == "header":
            return [(None, self.headers[ex.name])]
        if ex.kind == "hdrsel":
            return [(c, self.headers[h]) for c, h in ex.cases or []]
        raise self.unsupported(f"a {ex.kind} where a header is expected", ctx.where)

    def op(self, node: dict[str, Any], ctx: Ctx) -> Ex:
        op = node.get("op")
        left, right = node.get("left"), node.get("right")
        if op in _ARITH:
            a, b = self.data(left, ctx), self.data(right, ctx)
            return _arith(op, a, b)
        if op in _COMPARE:
            a, b = self.data(left, ctx), self.data(right, ctx)
            if a.const is not None and b.const is not None:
                result = _COMPARE[op](a.const, b.const)
                return Ex(str(result), "bool", const=result)
            return Ex(f"({a.code} {op} {b.code})", "bool")
        if op in ("==b", "!=b"):
            a, b = self.boolean(left, ctx), self.boolean(right, ctx)
            return Ex(f"({a.code} {op[:2]} {b.code})", "bool")
        if op in ("and", "or"):
            a, b = self.boolean(left, ctx), self.boolean(right, ctx)
            return Ex(f"({a.code} {op} {b.code})", "bool")
        if op == "not":
            a = self.boolean(right, ctx)
            return Ex(f"(not {a.code})", "bool")
        if op == "~":
            a = self.data(right, ctx)
            if a.const is not None:
                return Ex(str(~a.const), const=~a.const)
            return Ex(f"(~{a.code})")
        if op == "d2b":
            return self.boolean(right, ctx)
        if op == "b2d":
            b = self.boolean(right, ctx)
            if b.const is not None:
                return Ex(str(int(b.const)), bits=1, const=int(b.const))
            return Ex(f"(1 if {b.code} else 0)", bits=1)
        if op == "valid":
            target = self.value(right, ctx)
            return Ex(self.header_valid(target, ctx), "bool")
        if op == "valid_union":
            target = self.value(right, ctx)
            if target.kind == "header" and target.name in self.unions:
                target = Ex("", "union", name=target.name)
            return Ex(self.header_valid(target, ctx), "bool")
        if op == "?":
            c = self.boolean(node.get("cond"), ctx)
            a, b = self.value(left, ctx), self.value(right, ctx)
            if a.kind == "bool" and b.kind == "bool":
                return Ex(f"({a.code} if {c.code} else {b.code})", "bool")
            if a.kind in ("header", "hdrsel") and b.kind in ("header", "hdrsel"):
                cases = [(f"{c.code} and {x}" if x else c.code, h)
                         for x, h in self._cases(a)]
                cases += [(f"not {c.code} and {x}" if x else f"not {c.code}", h)
                          for x, h in self._cases(b)]
                return Ex("", "hdrsel", cases=cases)
            a, b = self.data(left, ctx), self.data(right, ctx)
            bits = None if a.bits is None or b.bits is None else max(a.bits, b.bits)
            return Ex(f"({a.code} if {c.code} else {b.code})", bits=bits)
        if op in ("two_comp_mod", "usat_cast", "sat_cast"):
            a, w = self.data(left, ctx), self.data(right, ctx)
            if w.const is None or w.const <= 0:
                raise self.unsupported(f"expression op {op!r} with a non-constant width",
                                       ctx.where)
            width = int(w.const)
            if op == "two_comp_mod":
                return Ex(_signed_code(a.code, width))
            if op == "usat_cast":
                top = (1 << width) - 1
                return Ex(f"min(max({a.code}, 0), {top})", bits=width)
            hi, lo = (1 << (width - 1)) - 1, -(1 << (width - 1))
            return Ex(f"min(max({a.code}, {lo}), {hi})")
        if op in ("dereference_header_stack", "dereference_stack"):
            stack = self.value(left, ctx)
            if stack.kind != "stack":
                raise self.unsupported(f"{op} of a {stack.kind}", ctx.where)
            return self.stack_element(stack.name or "", self.data(right, ctx), ctx)
        if op == "access_field":
            return self.access_field(self.value(left, ctx), int(right), ctx)
        if op in ("last_stack_index", "size_stack"):
            stack = self.value(right, ctx)
            if stack.kind != "stack":
                raise self.unsupported(f"{op} of a {stack.kind}", ctx.where)
            nxt = self.stack_next[stack.name or ""]
            return Ex(f"({nxt} - 1)" if op == "last_stack_index" else nxt)
        raise self.unsupported(f"expression op {op!r}", ctx.where)

    def lookahead(self, offset: int, width: int) -> Ex:
        """Bits ahead of the parser's position; the caller checked they exist."""
        first, last = offset // 8, (offset + width + 7) // 8
        shift = last * 8 - offset - width
        code = f"int.from_bytes(frame[pos + {first}:pos + {last}], 'big')"
        if shift:
            code = f"({code} >> {shift})"
        if (last - first) * 8 - shift > width:
            code = f"({code} & {(1 << width) - 1})"
        return Ex(code, bits=width)

    # -- assignments -----------------------------------------------------------------------------
    def lvalue(self, tv: Any, ctx: Ctx) -> list[tuple[str | None, str, int, bool]]:
        """(condition, local, width, signed) alternatives for a field a primitive writes:
        one unconditional local for a plain field, one per element for stack[i].f."""
        kind = tv.get("type") if isinstance(tv, dict) else type(tv).__name__
        if kind == "expression" or kind == "stack_field":
            inner = tv["value"]
            if kind == "stack_field":
                hdr_ex, field = self.last_of(inner[0], ctx), inner[1]
            else:
                node = inner.get("value", inner) if "op" not in inner else inner
                if node.get("op") != "access_field":
                    raise self.unsupported("assignment to an expression", ctx.where)
                hdr_ex, field = self.value(node["left"], ctx), int(node["right"])
            result = []
            for cond, hdr in self.header_choice(hdr_ex, ctx):
                fname = hdr.fields[field][0] if isinstance(field, int) else field
                width, signed = self.field_info(hdr, fname)
                result.append((cond, hdr.vars[fname], width, signed))
            return result
        if kind != "field":
            raise self.unsupported(f"assignment to a {kind!r} operand", ctx.where)
        hdr, fname = self.field_ref(tv["value"], ctx)
        if fname == "$valid$":
            raise ValueError(f"{ctx.where}: $valid$ is read-only")
        width, signed = self.field_info(hdr, fname)
        return [(None, hdr.vars[fname], width, signed)]

    def store(self, tv: Any, src: Ex, ctx: Ctx, out: Out, ind: int) -> None:
        """Emit `field := src`, truncated to the field (for each possible target)."""
        targets = self.lvalue(tv, ctx)
        for _, var, _, _ in targets:
            if var == self._mcast_var:
                self._check_mcast_source(src, ctx)
        if len(targets) == 1 and targets[0][0] is None:
            _, var, width, signed = targets[0]
            out(ind, f"{var} = {self.fit(src, width, signed)}")
            return
        value = Ex(self.tmp(), src.kind, src.bits)
        out(ind, f"{value.code} = {src.code}")
        for i, (cond, var, width, signed) in enumerate(targets):
            out(ind, f"{'if' if i == 0 else 'elif'} {cond}:" if cond else "else:")
            out(ind + 1, f"{var} = {self.fit(value, width, signed)}")

    def _check_mcast_source(self, src: Ex, ctx: Ctx) -> None:
        """Multicast needs a packet replication engine, which this target has not. A zero
        (mark_to_drop) is fine; a copy of another field (p4c copies standard_metadata
        through inout action parameters) is checked per packet; anything else is refused."""
        if src.const is not None and int(src.const) == 0:
            return
        if src.const is None and src.code.isidentifier():
            self._mcast_copied = True
            return
        raise self.unsupported("multicast (assignment to standard_metadata.mcast_grp)",
                               ctx.where)

    @staticmethod
    def _cases(ex: Ex) -> list[tuple[str | None, str]]:
        if ex.kind == "header":
            return [(None, ex.name or "")]
        return list(ex.cases or [])

    def fit(self, ex: Ex, width: int, signed: bool) -> str:
        """Source of `ex` truncated to a field of `width` bits (two's complement if signed)."""
        if ex.const is not None:
            value = int(ex.const) & ((1 << width) - 1)
            if signed and value >> (width - 1):
                value -= 1 << width
            return str(value)
        if signed:
            return _signed_code(ex.code, width)
        if ex.bits is not None and ex.bits <= width:
            return ex.code
        return f"({ex.code} & {(1 << width) - 1})"

    # -- primitives ------------------------------------------------------------------------------
    def action_body(self, action: dict[str, Any], ctx: Ctx, out: Out, ind: int) -> None:
        """Inline an action's primitives at indentation `ind`."""
        prims = action.get("primitives") or []
        if any(p.get("op") in ("_jump", "_jump_if_zero") for p in prims):
            self._action_with_jumps(prims, ctx, out, ind)
            return
        start = len(out.lines)
        for prim in prims:
            self.primitive(prim, ctx, out, ind)
        if len(out.lines) == start:
            out(ind, "pass")

    def _action_with_jumps(self, prims: list[dict[str, Any]], ctx: Ctx, out: Out,
                           ind: int) -> None:
        """Actions with _jump/_jump_if_zero: a small program counter loop."""
        pc = self.tmp()
        out(ind, f"{pc} = 0")
        out(ind, f"while {pc} < {len(prims)}:")
        for i, prim in enumerate(prims):
            out(ind + 1, f"{'if' if i == 0 else 'elif'} {pc} == {i}:")
            op = prim.get("op")
            params = prim.get("parameters") or []
            if op == "_jump":
                target = self.data(params[0], ctx)
                out(ind + 2, f"{pc} = {target.code}")
                continue
            if op == "_jump_if_zero":
                test = self.data(params[0], ctx)
                target = self.data(params[1], ctx)
                out(ind + 2, f"{pc} = {target.code} if {test.code} == 0 else {i + 1}")
                continue
            self.primitive(prim, ctx, out, ind + 2)
            out(ind + 2, f"{pc} = {i + 1}")

    def primitive(self, prim: dict[str, Any], ctx: Ctx, out: Out, ind: int) -> None:
        op = prim.get("op")
        params = prim.get("parameters") or []
        where = ctx.where
        if op not in PRIMITIVES:
            hint = _UNSUPPORTED_HINT.get(op or "")
            raise self.unsupported(f"primitive {op!r}" + (f" ({hint})" if hint else ""), where)
        if op in ("assign", "modify_field"):
            if len(params) != 2:
                raise self.unsupported(f"primitive {op!r} with {len(params)} parameters", where)
            dst = params[0]
            if isinstance(dst, dict) and dst.get("type") in ("header", "header_union"):
                self._assign_header_like(dst, params[1], ctx, out, ind)
                return
            self.store(dst, self.data(params[1], ctx), ctx, out, ind)
        elif op in ("assign_header", "copy_header", "assign_union"):
            self._assign_header_like(params[0], params[1], ctx, out, ind)
        elif op == "add_header":
            for hdr, inner in self._each_header(params[0], ctx, out, ind):
                out(inner, f"if not {hdr.valid}:")
                for fname, _, _ in hdr.fields:
                    out(inner + 1, f"{hdr.vars[fname]} = 0")
                self._mark_valid(hdr, out, inner + 1)
                out(inner + 1, f"plen += {hdr.nbytes}")
        elif op == "remove_header":
            for hdr, inner in self._each_header(params[0], ctx, out, ind):
                out(inner, f"if {hdr.valid}:")
                out(inner + 1, f"{hdr.valid} = False")
                out(inner + 1, f"plen -= {hdr.nbytes}")
        elif op in ("push", "pop"):
            self._push_pop(op, params, ctx, out, ind)
        elif op == "assign_header_stack":
            dst, src = (self._named(x, "header_stack", self.stacks, ctx) for x in params[:2])
            if len(self.stacks[dst]) != len(self.stacks[src]):
                raise ValueError(f"{where}: stacks {dst} and {src} differ in size")
            for d, s_ in zip(self.stacks[dst], self.stacks[src], strict=True):
                self._copy_header(self.headers[d], self.headers[s_], out, ind)
            out(ind, f"{self.stack_next[dst]} = {self.stack_next[src]}")
        elif op in ("mark_to_drop", "drop"):
            out(ind, f"{self.sm['egress_spec']} = {DROP_PORT}")
            if self._mcast_var is not None:
                out(ind, f"{self._mcast_var} = 0")
        elif op == "exit":
            self._saw_exit = True
            out(ind, "ex = True")
        elif op == "no_op":
            out(ind, "pass")
        elif op == "register_read":
            reg = self._named(params[1], "register_array", self.register_specs, ctx)
            spec = self.register_specs[reg]
            cells = self.register_vars[reg]
            idx = self.data(params[2], ctx)
            if idx.const is not None:
                if 0 <= idx.const < spec.size:
                    src = Ex(f"{cells}[{idx.const}]", bits=spec.bitwidth)
                    self.store(params[0], src, ctx, out, ind)
                return
            i = self.tmp()
            out(ind, f"{i} = {idx.code}")
            out(ind, f"if {i} < {spec.size}:")
            self.store(params[0], Ex(f"{cells}[{i}]", bits=spec.bitwidth), ctx, out, ind + 1)
        elif op == "register_write":
            reg = self._named(params[0], "register_array", self.register_specs, ctx)
            spec = self.register_specs[reg]
            cells = self.register_vars[reg]
            idx = self.data(params[1], ctx)
            src = self.data(params[2], ctx)
            value = self.fit(src, spec.bitwidth, False)
            if idx.const is not None:
                if 0 <= idx.const < spec.size:
                    out(ind, f"{cells}[{idx.const}] = {value}")
                return
            i = self.tmp()
            out(ind, f"{i} = {idx.code}")
            out(ind, f"if {i} < {spec.size}:")
            out(ind + 1, f"{cells}[{i}] = {value}")
        elif op == "count":
            name = self._named(params[0], "counter_array", self.counter_vars, ctx)
            packets, nbytes = self.counter_vars[name]
            size = self.counter_specs[name].size
            idx = self.data(params[1], ctx)
            if idx.const is not None:
                if 0 <= idx.const < size:
                    out(ind, f"{packets}[{idx.const}] += 1")
                    out(ind, f"{nbytes}[{idx.const}] += ilen")
                return
            i = self.tmp()
            out(ind, f"{i} = {idx.code}")
            out(ind, f"if {i} < {size}:")
            out(ind + 1, f"{packets}[{i}] += 1")
            out(ind + 1, f"{nbytes}[{i}] += ilen")
        elif op == "modify_field_with_hash_based_offset":
            base = self.data(params[1], ctx)
            calc = self._named(params[2], "calculation", self._calculations, ctx)
            size = self.data(params[3], ctx)
            h = self.calculation(calc, ctx, out, ind)
            s = self.tmp()
            out(ind, f"{s} = {size.code} or 1")
            self.store(params[0], Ex(f"({h} % {s} + {base.code})"), ctx, out, ind)
        elif op == "modify_field_rng_uniform":
            lo, hi = self.data(params[1], ctx), self.data(params[2], ctx)
            a, b = self.tmp(), self.tmp()
            rand = self.const("_randint", random.randint)
            out(ind, f"{a} = {lo.code}")
            out(ind, f"{b} = {hi.code}")
            out(ind, f"if {a} <= {b}:")
            self.store(params[0], Ex(f"{rand}({a}, {b})"), ctx, out, ind + 1)
        elif op == "truncate":
            n = self.data(params[0], ctx)
            out(ind, f"trunc = {n.code}")
        elif op == "log_msg":
            fmt = params[0].get("value") if isinstance(params[0], dict) else str(params[0])
            values = []
            if len(params) > 1:
                vec = params[1]
                items = vec.get("value") if isinstance(vec, dict) else vec
                values = [self.data(x, ctx).code for x in items or []]
            fn = self.const("_log_msg", _log_msg)
            out(ind, f"{fn}({fmt!r}, ({''.join(v + ', ' for v in values)}))")
        elif op in ("assert", "assume"):
            cond = self.data(params[0], ctx)
            fn = self.const("_assert_failed", _assert_failed)
            out(ind, f"if {cond.code} == 0:")
            out(ind + 1, f"{fn}({op!r}, {where!r})")
            out(ind + 1, "return []")
        elif op in ("_jump", "_jump_if_zero"):  # pragma: no cover - handled by the caller
            raise AssertionError(op)

    def _named(self, tv: Any, kind: str, table: dict[str, Any], ctx: Ctx) -> str:
        name = tv.get("value") if isinstance(tv, dict) else None
        if not isinstance(tv, dict) or tv.get("type") != kind or name not in table:
            raise ValueError(f"{ctx.where}: expected a known {kind}, got {tv!r}")
        return name

    def _header_alternatives(self, tv: Any, ctx: Ctx) -> list[tuple[str | None, Header]]:
        """A header operand: one header, or (condition, header) chosen at run time."""
        kind = tv.get("type") if isinstance(tv, dict) else None
        if kind == "header":
            name = tv["value"]
            if name not in self.headers:
                raise KeyError(f"{ctx.where}: unknown header {name!r}")
            alternatives = [(None, self.headers[name])]
        elif kind == "expression":
            alternatives = self.header_choice(self.value(tv, ctx), ctx)
        else:
            raise self.unsupported(f"header operand of type {kind!r}", ctx.where)
        for _, hdr in alternatives:
            if hdr.metadata:
                raise ValueError(f"{ctx.where}: {hdr.name} is metadata, not a header")
        return alternatives

    def _each_header(self, tv: Any, ctx: Ctx, out: Out, ind: int) -> list[tuple[Header, int]]:
        """Emit the branches of a header operand; returns (header, indentation) to fill in,
        in order (the caller emits each branch's body right after getting it)."""
        alternatives = self._header_alternatives(tv, ctx)
        if len(alternatives) == 1 and alternatives[0][0] is None:
            return [(alternatives[0][1], ind)]
        return _Branches(alternatives, out, ind)  # type: ignore[return-value]

    def _mark_valid(self, hdr: Header, out: Out, ind: int) -> None:
        out(ind, f"{hdr.valid} = True")
        for sibling in hdr.union_siblings:
            out(ind, f"{self.headers[sibling].valid} = False")

    def _assign_header_like(self, dst_tv: Any, src_tv: Any, ctx: Ctx, out: Out,
                            ind: int) -> None:
        dkind = dst_tv.get("type") if isinstance(dst_tv, dict) else None
        if dkind == "header_union" or (dkind == "header" and dst_tv["value"] in self.unions):
            dst_members = self.unions[dst_tv["value"]]
            src_members = self.unions[src_tv["value"]]
            for d, s in zip(dst_members, src_members, strict=True):
                self._copy_header(self.headers[d], self.headers[s], out, ind)
            return
        for dst, inner in self._each_header(dst_tv, ctx, out, ind):
            for src, inner2 in self._each_header(src_tv, ctx, out, inner):
                if dst.type_name != src.type_name:
                    raise ValueError(f"{ctx.where}: assign_header between {dst.type_name}"
                                     f" and {src.type_name}")
                self._copy_header(dst, src, out, inner2)

    def _push_pop(self, op: str, params: list[Any], ctx: Ctx, out: Out, ind: int) -> None:
        """push_front/pop_front(count) on a header stack, as BMv2's HeaderStack."""
        stack = self._named(params[0], "header_stack", self.stacks, ctx)
        count = self.data(params[1], ctx)
        if count.const is None:
            raise self.unsupported(f"{op} with a non-constant count", ctx.where)
        n = int(count.const)
        members = [self.headers[m] for m in self.stacks[stack]]
        depth = len(members)
        nxt = self.stack_next[stack]
        if op == "push":
            for i in range(depth - 1, n - 1, -1):
                self._copy_header(members[i], members[i - n], out, ind)
            for i in range(min(n, depth)):
                out(ind, f"{members[i].valid} = False")
            out(ind, f"{nxt} = min({nxt} + {n}, {depth})")
        else:
            for i in range(depth - n):
                self._copy_header(members[i], members[i + n], out, ind)
            for i in range(max(depth - n, 0), depth):
                out(ind, f"{members[i].valid} = False")
            out(ind, f"{nxt} = max({nxt} - {n}, 0)")

    def _copy_header(self, dst: Header, src: Header, out: Out, ind: int) -> None:
        out(ind, f"if {src.valid}:")
        for fname, _, _ in dst.fields:
            out(ind + 1, f"{dst.vars[fname]} = {src.vars[fname]}")
        self._mark_valid(dst, out, ind + 1)
        out(ind, "else:")
        out(ind + 1, f"{dst.valid} = False")

    # -- calculations ----------------------------------------------------------------------------
    def calculation(self, name: str, ctx: Ctx, out: Out, ind: int,
                    valid: frozenset[str] = frozenset()) -> str:
        """Emit the code computing calculation `name`; returns the local holding the result."""
        calc = self._calculations[name]
        algo = calc.get("algo")
        fn = hashes.ALGORITHMS.get(algo)
        if fn is None:
            raise self.unsupported(f"hash algorithm {algo!r}", f"calculation {name}")
        x, n = self.bitstring(calc.get("input") or [], ctx, out, ind, valid)
        result = self.tmp()
        out(ind, f"{result} = {self.const('_' + algo, fn)}({x}, {n})")
        return result

    def bitstring(self, inputs: list[dict[str, Any]], ctx: Ctx, out: Out, ind: int,
                  valid: frozenset[str] = frozenset()) -> tuple[str, str]:
        """Emit code building BMv2's calculation input: (int local, bit count). Fields of
        invalid headers are left out, as BMv2 does; `valid` names validity locals the
        caller already knows to be true."""
        x, n = self.tmp(), self.tmp()
        # Runs of inputs guarded by the same validity, so they can be combined.
        runs: list[tuple[str, list[tuple[str, int]]]] = []
        payload = False
        for item in inputs:
            kind, v = item.get("type"), item.get("value")
            if payload:
                raise self.unsupported("calculation input after 'payload'", ctx.where)
            if kind == "field":
                hdr, fname = self.field_ref(v, ctx)
                if fname == "$valid$":
                    raise self.unsupported("$valid$ in a calculation", ctx.where)
                width, signed = self.field_info(hdr, fname)
                code = hdr.vars[fname]
                if signed:
                    code = f"({code} & {(1 << width) - 1})"
                guard = hdr.valid
                parts = [(code, width)]
            elif kind == "hexstr":
                width = int(item.get("bitwidth") or 0)
                if width <= 0:
                    raise ValueError(f"{ctx.where}: hexstr calculation input needs a bitwidth")
                guard, parts = "True", [(str(_hex(v) & ((1 << width) - 1)), width)]
            elif kind == "header":
                hdr = self.headers[v]
                guard = hdr.valid
                parts = []
                for fname, width, signed in hdr.fields:
                    code = hdr.vars[fname]
                    parts.append((f"({code} & {(1 << width) - 1})" if signed else code, width))
            elif kind == "payload":
                payload = True
                continue
            else:
                raise self.unsupported(f"calculation input of type {kind!r}", ctx.where)
            if guard in valid:
                guard = "True"
            if runs and runs[-1][0] == guard:
                runs[-1][1].extend(parts)
            else:
                runs.append((guard, list(parts)))
        if len(runs) == 1 and not payload:
            guard, parts = runs[0]
            total = sum(w for _, w in parts)
            expr = _concat(parts)
            if guard == "True":
                out(ind, f"{x} = {expr}")
                return x, str(total)
            out(ind, f"{x} = {expr} if {guard} else 0")
            out(ind, f"{n} = {total} if {guard} else 0")
            return x, n
        out(ind, f"{x} = 0")
        out(ind, f"{n} = 0")
        for guard, parts in runs:
            total = sum(w for _, w in parts)
            inner = ind
            if guard != "True":
                out(ind, f"if {guard}:")
                inner = ind + 1
            out(inner, f"{x} = ({x} << {total}) | {_concat(parts)}")
            out(inner, f"{n} += {total}")
        if payload:
            pl = self.tmp()
            out(ind, f"{x} <<= -{n} % 8")
            out(ind, f"{n} += -{n} % 8")
            out(ind, f"{pl} = frame[pos:]")
            out(ind, f"{x} = ({x} << (8 * len({pl}))) | int.from_bytes({pl}, 'big')")
            out(ind, f"{n} += 8 * len({pl})")
        return x, n

    # -- actions and tables ----------------------------------------------------------------------
    def _validate_actions(self) -> None:
        """Compile every action once, so unsupported primitives fail at load even in
        actions no table uses; also build the public ActionSpecs."""
        self.action_specs: dict[str, ActionSpec] = {}
        for a in self.j["actions"]:
            params = [(p["name"], int(p["bitwidth"])) for p in a.get("runtime_data") or []]
            spec = ActionSpec(a["name"], params)
            self.action_specs.setdefault(a["name"], spec)
            ctx = Ctx(f"action {a['name']}",
                      [Ex(f"ap{i}", bits=w) for i, (_, w) in enumerate(params)])
            self.action_body(a, ctx, Out(), 0)

    def _tables(self) -> None:
        self.tables: dict[str, TableState] = {}
        self.table_json: dict[str, dict[str, Any]] = {}
        self.const_loaders: list[Callable[[], None]] = []
        for p in self.j["pipelines"]:
            for t in p.get("tables") or []:
                self._table(t, p["name"])

    def _table(self, t: dict[str, Any], pipeline: str) -> None:
        name = t["name"]
        where = f"table {name}"
        ttype = t.get("type", "simple")
        if ttype != "simple":
            raise self.unsupported(f"table type {ttype!r} (action profiles/selectors)", where)
        if t.get("direct_meters"):
            raise self.unsupported(f"direct meter {t['direct_meters']!r}", where)
        if t.get("support_timeout"):
            raise self.unsupported("table idle timeout (support_timeout)", where)
        keys: list[KeySpec] = []
        layout: list[KeyLayout] = []
        for k in t.get("key") or []:
            kind = k.get("match_type")
            if kind not in MATCH_KINDS:
                raise self.unsupported(f"match kind {kind!r}", where)
            target = k.get("target")
            if kind == "valid":
                hname = target if isinstance(target, str) else target[0]
                width = 1
                kname = k.get("name") or f"{hname}.$valid$"
                kind = "exact"
            else:
                hdr, fname = self.field_ref(target, Ctx(where))
                width = 1 if fname == "$valid$" else self.field_info(hdr, fname)[0]
                kname = k.get("name") or f"{target[0]}.{target[1]}"
            keys.append(KeySpec(kname, kind, width))
            layout.append(KeyLayout(kname, kind, width))
        action_names: list[str] = []
        actions: list[ActionSpec] = []
        ids = t.get("action_ids") or []
        for i, aid in enumerate(ids):
            a = self._actions_by_id[aid]
            aname = (t.get("actions") or [])[i] if i < len(t.get("actions") or []) else a["name"]
            action_names.append(aname)
            actions.append(ActionSpec(aname, [(p["name"], int(p["bitwidth"]))
                                              for p in a.get("runtime_data") or []]))
        if len(set(action_names)) != len(action_names):
            raise self.unsupported("a table with two actions of the same name", where)
        default = None
        const_default = False
        entry_const = False
        dentry = t.get("default_entry")
        if dentry is not None:
            aid = dentry["action_id"]
            if aid not in ids:
                raise ValueError(f"{where}: default action id {aid} is not an action of the"
                                 " table")
            aname = action_names[ids.index(aid)]
            default = (aname, [_hex(x) for x in dentry.get("action_data") or []])
            const_default = bool(dentry.get("action_const"))
            entry_const = bool(dentry.get("action_entry_const")) and "action_data" in dentry
        counter = self.direct_counters.get(name)
        if t.get("with_counters") and counter is None:
            raise ValueError(f"{where}: with_counters but no direct counter is bound to it")
        spec = TableSpec(
            name=name, keys=keys, actions=action_names,
            default_action=default[0] if default else "",
            default_params=list(default[1]) if default else [],
            const_default_action=const_default, size=int(t.get("max_size", 1024)),
            direct_counter=counter,
            needs_priority=any(k.kind in ("ternary", "range") for k in layout))
        entries = t.get("entries") or []
        state = TableState(spec, layout, actions, default, bool(entries), entry_const)
        if default is not None:
            state.check_action(*default)
        self.tables[name] = state
        self.table_json[name] = t
        if entries:
            self.const_loaders.append(self._const_entries(state, entries, ids, action_names))
            self.const_loaders[-1]()

    def _const_entries(self, state: TableState, entries: list[dict[str, Any]],
                       ids: list[int], names: list[str]) -> Callable[[], None]:
        from bmv2.softswitch.engine.api import MatchKey

        prepared = []
        for e in entries:
            keys = []
            if len(e["match_key"]) != len(state.layout):
                raise ValueError(f"table {state.name}: a const entry with"
                                 f" {len(e['match_key'])} key fields")
            for mk, lay in zip(e["match_key"], state.layout, strict=True):
                kind = mk["match_type"]
                if kind == "exact":
                    keys.append(MatchKey("exact", _hex(mk["key"])))
                elif kind == "lpm":
                    plen = int(mk["prefix_length"])
                    full = (1 << lay.bitwidth) - 1
                    keys.append(MatchKey("lpm", _hex(mk["key"]) & (full ^ (full >> plen)), plen))
                elif kind == "ternary":
                    keys.append(MatchKey("ternary", _hex(mk["key"]) & _hex(mk["mask"]),
                                         _hex(mk["mask"])))
                elif kind == "range":
                    keys.append(MatchKey("range", _hex(mk["start"]), _hex(mk["end"])))
                elif kind == "valid":
                    keys.append(MatchKey("exact", 1 if mk["key"] else 0))
                else:
                    raise self.unsupported(f"match kind {kind!r} in a const entry",
                                           f"table {state.name}")
            act = e["action_entry"]
            aname = names[ids.index(act["action_id"])]
            params = [_hex(x) for x in act.get("action_data") or []]
            # BMv2: a smaller number is a higher priority; P4Runtime: the reverse.
            priority = (2**31 - 1 - int(e.get("priority", 0))) if state.needs_priority else 0
            prepared.append((keys, aname, params, priority))

        def load() -> None:
            for keys, aname, params, priority in prepared:
                state.insert_const(keys, aname, params, priority)

        return load

    # -- the packet function ---------------------------------------------------------------------
    def _emit_process(self) -> str:
        out = Out()
        body = Out()
        self._emit_parser(body, 1)
        self._emit_verify(body, 1)
        self._set_sm(body, 1, "parser_error", "perr")
        self._set_sm(body, 1, "checksum_error", "cerr")
        self._emit_pipeline("ingress", body, 1)
        sm = self.sm
        if self._mcast_copied:
            refuse = self.const("_refuse_multicast", _refuse_multicast)
            body(1, f"if {sm['mcast_grp']}:")
            body(2, f"{refuse}({sm['mcast_grp']})")
            body(2, "return []")
        body(1, f"if {sm['egress_spec']} == {DROP_PORT}:")
        body(2, "return []")
        body(1, f"port = {sm['egress_spec']}")
        body(1, f"prio = {sm['priority']}" if sm["priority"] else "prio = 0")
        # simple_switch, before egress: egress_port, egress_spec away from the drop port
        self._set_sm(body, 1, "egress_port", "port")
        width = self.sm_width.get("egress_spec", 9)
        self._set_sm(body, 1, "egress_spec", str((DROP_PORT + 1) & ((1 << width) - 1)))
        self._set_sm(body, 1, "instance_type", "0")
        self._set_sm(body, 1, "packet_length", "plen")
        now = self.const("_now_us", _clock())
        if sm["enq_timestamp"]:
            self._set_sm(body, 1, "enq_timestamp", f"{now}()")
        # The traffic manager: the caller queues the packet here and resumes the function
        # when the packet leaves its queue, so that egress runs at dequeue, as in
        # simple_switch (state egress reads, such as registers, sees the queue's contents).
        body(1, "yield port, prio")
        if sm["egress_global_timestamp"]:
            self._set_sm(body, 1, "egress_global_timestamp", f"{now}()")
        self._emit_pipeline("egress", body, 1)
        body(1, f"if {sm['egress_spec']} == {DROP_PORT}:")
        body(2, "return []")
        self._emit_update(body, 1)
        self._emit_deparser(body, 1)
        # Prologue: every field zero, every header invalid, standard metadata set.
        out(0, "def process(frame, ingress_port):")
        out(1, "flen = ilen = plen = len(frame)")
        field_vars = [v for h in self.headers.values() for v in h.vars.values()]
        for i in range(0, len(field_vars), 32):
            out(1, " = ".join(field_vars[i:i + 32]) + " = 0")
        valid_vars = [h.valid for h in self.headers.values() if h.valid != "True"]
        for i in range(0, len(valid_vars), 32):
            out(1, " = ".join(valid_vars[i:i + 32]) + " = False")
        out(1, "pos = perr = cerr = 0")
        if self.stack_next:
            out(1, " = ".join(self.stack_next.values()) + " = 0")
        out(1, "trunc = -1")
        width = self.sm_width.get("ingress_port", 9)
        self._set_sm(out, 1, "ingress_port", f"ingress_port & {(1 << width) - 1}")
        self._set_sm(out, 1, "packet_length", "flen")
        if sm["ingress_global_timestamp"]:
            self._set_sm(out, 1, "ingress_global_timestamp", f"{now}()")
        out.lines.extend(body.lines)
        return "\n".join(out.lines) + "\n"

    def _set_sm(self, out: Out, ind: int, name: str, code: str) -> None:
        var = self.sm.get(name)
        if var is None:
            return
        width = self.sm_width.get(name)
        if width is not None and name in ("ingress_global_timestamp", "egress_global_timestamp",
                                          "enq_timestamp"):
            code = f"({code} & {(1 << width) - 1})"
        out(ind, f"{var} = {code}")

    # -- parser ----------------------------------------------------------------------------------
    def _emit_parser(self, out: Out, ind: int) -> None:
        parser = self.j["parsers"][0]
        states = {s["name"]: s for s in parser.get("parse_states") or []}
        init = parser.get("init_state")
        if init is None or init not in states:
            out(ind, "pass")
            return

        def succ(name: str) -> list[str]:
            return [t["next_state"] for t in states[name].get("transitions") or []
                    if t.get("next_state") is not None]

        order, cyclic = _order(init, succ)
        ids = {name: i for i, name in enumerate(order)}
        out(ind, f"st = {ids[init]}")
        if cyclic:
            out(ind, "while st >= 0:")
            ind += 1
        for i, name in enumerate(order):
            kw = "elif" if cyclic and i else "if"
            out(ind, f"{kw} st == {i}:  # parse state {name}")
            self._parse_state(states[name], ids, out, ind + 1)

    def _parse_state(self, state: dict[str, Any], ids: dict[str, int], out: Out,
                     ind: int) -> None:
        where = f"parse state {state['name']}"
        ctx = Ctx(where, in_parser=True)
        too_short = self.errors["PacketTooShort"]
        for op in state.get("parser_ops") or []:
            kind = op.get("op")
            params = op.get("parameters") or []
            if kind == "extract":
                target = params[0]
                if target.get("type") == "stack":
                    ind = self._extract_next(target["value"], ctx, out, ind)
                    continue
                if target.get("type") != "regular":
                    raise self.unsupported(f"parser extract of type {target.get('type')!r}",
                                           where)
                hdr = self.headers[target["value"]]
                if hdr.metadata:
                    raise ValueError(f"{where}: cannot extract metadata {hdr.name}")
                ind = self._extract(hdr, out, ind)
            elif kind == "set":
                src = params[1]
                if isinstance(src, dict) and src.get("type") == "lookahead":
                    offset, bw = int(src["value"][0]), int(src["value"][1])
                    ind = self._need(offset + bw, out, ind)
                self.store(params[0], self.data(src, ctx), ctx, out, ind)
            elif kind == "verify":
                cond = self.boolean(params[0], ctx)
                err = self.data(params[1], ctx)
                out(ind, f"if not {cond.code}:")
                out(ind + 1, f"perr = {err.code}")
                out(ind + 1, "st = -1")
                out(ind, "else:")
                ind += 1
            elif kind == "primitive":
                self._saw_exit = False
                for prim in params:
                    self.primitive(prim, ctx, out, ind)
                if self._saw_exit:
                    raise self.unsupported("exit in a parser", where)
            elif kind in ("advance", "shift"):
                amount = self.data(params[0], ctx)
                nbytes = self.tmp()
                if kind == "advance":
                    out(ind, f"{nbytes} = ({amount.code}) // 8")
                else:
                    out(ind, f"{nbytes} = {amount.code}")
                out(ind, f"if pos + {nbytes} > flen:")
                out(ind + 1, f"perr = {too_short}")
                out(ind + 1, "st = -1")
                out(ind, "else:")
                out(ind + 1, f"pos += {nbytes}")
                ind += 1
            else:
                raise self.unsupported(f"parser op {kind!r}", where)
        self._transition(state, ids, ctx, out, ind)

    def _need(self, nbits: int, out: Out, ind: int) -> int:
        """Emit a check that `nbits` bits lie ahead (else PacketTooShort); returns the
        indentation of the code that may read them."""
        nbytes = (nbits + 7) // 8
        out(ind, f"if pos + {nbytes} > flen:")
        out(ind + 1, f"perr = {self.errors['PacketTooShort']}")
        out(ind + 1, "st = -1")
        out(ind, "else:")
        return ind + 1

    def _extract_next(self, stack: str, ctx: Ctx, out: Out, ind: int) -> int:
        """extract(stack.next): StackOutOfBounds when full, else into stack[next]."""
        if stack not in self.stacks:
            raise KeyError(f"{ctx.where}: unknown header stack {stack!r}")
        members = [self.headers[m] for m in self.stacks[stack]]
        nxt = self.stack_next[stack]
        nbytes = members[0].nbytes if members else 0
        out(ind, f"if {nxt} >= {len(members)}:")
        out(ind + 1, f"perr = {self.errors['StackOutOfBounds']}")
        out(ind + 1, "st = -1")
        out(ind, f"elif pos + {nbytes} > flen:")
        out(ind + 1, f"perr = {self.errors['PacketTooShort']}")
        out(ind + 1, "st = -1")
        out(ind, "else:")
        for i, hdr in enumerate(members):
            out(ind + 1, f"{'if' if i == 0 else 'elif'} {nxt} == {i}:")
            self._extract(hdr, out, ind + 2, check=False)
        out(ind + 1, f"{nxt} += 1")
        out(ind + 1, f"pos += {nbytes}")
        return ind + 1

    def _extract(self, hdr: Header, out: Out, ind: int, check: bool = True) -> int:
        """Extract `hdr` at `pos`; with `check`, first PacketTooShort and advance `pos`."""
        lay = self.layout(hdr)
        if check:
            ind = self._need(hdr.nbits, out, ind)
        if not hdr.fields:
            self._mark_valid(hdr, out, ind)
            return ind
        unpack = self.const(f"_unpack_{hdr.type_name}", struct.Struct(lay.fmt).unpack_from)
        targets: list[str] = []
        after: list[str] = []
        for members, pieces in lay.groups:
            if len(members) == 1 and len(pieces) == 1 and pieces[0][0][-1] != "s":
                idx, _, width = members[0]
                fname, _, signed = hdr.fields[idx]
                var = hdr.vars[fname]
                targets.append(var)
                if signed:
                    after.append(f"{var} = {_from_unsigned(var, width)}")
                continue
            names = [self.tmp() for _ in pieces]
            targets.extend(names)
            group = _join_pieces(names, pieces)
            if len(members) == 1:
                idx, _, width = members[0]
                fname, _, signed = hdr.fields[idx]
                var = hdr.vars[fname]
                after.append(f"{var} = {group}")
                if signed:
                    after.append(f"{var} = {_from_unsigned(var, width)}")
                continue
            g = self.tmp()
            after.append(f"{g} = {group}")
            for i, (idx, shift, width) in enumerate(members):
                fname, _, signed = hdr.fields[idx]
                var = hdr.vars[fname]
                code = f"({g} >> {shift})" if shift else g
                if i:  # the first member needs no mask: nothing lies above it
                    code = f"({code} & {(1 << width) - 1})"
                after.append(f"{var} = {code}")
                if signed:
                    after.append(f"{var} = {_from_unsigned(var, width)}")
        out(ind, f"{', '.join(targets)}, = {unpack}(frame, pos)")
        for line in after:
            out(ind, line)
        self._mark_valid(hdr, out, ind)
        if check:
            out(ind, f"pos += {hdr.nbytes}")
        return ind

    def _transition(self, state: dict[str, Any], ids: dict[str, int], ctx: Ctx, out: Out,
                    ind: int) -> None:
        transitions = state.get("transitions") or []
        keys = state.get("transition_key") or []

        def target(t: dict[str, Any]) -> str:
            nxt = t.get("next_state")
            return str(ids[nxt]) if nxt is not None else "-1"

        default = next((target(t) for t in transitions if t.get("type") == "default"), "-1")
        cases = [t for t in transitions if t.get("type") != "default"]
        for t in cases:
            if t.get("type") != "hexstr":
                raise self.unsupported(f"parser transition of type {t.get('type')!r}",
                                       ctx.where)
        if not cases or not keys:
            out(ind, f"st = {default}")
            return
        parts: list[tuple[str, int]] = []
        need = 0
        for k in keys:
            kind, v = k.get("type"), k.get("value")
            if kind == "field":
                ex = self.field_value(v, ctx)
                hdr, fname = self.field_ref(v, ctx)
                width = 1 if fname == "$valid$" else self.field_info(hdr, fname)[0]
                code = ex.code
                if ex.bits is None:
                    code = f"({code} & {(1 << width) - 1})"
            elif kind == "lookahead":
                offset, width = int(v[0]), int(v[1])
                need = max(need, offset + width)
                code = self.lookahead(offset, width).code
            elif kind == "stack_field":
                last = self.last_of(v[0], ctx)
                _, first = self.header_choice(last, ctx)[0]
                width, signed = self.field_info(first, v[1])
                code = self.access_field(last, v[1], ctx).code
                if signed:
                    code = f"({code} & {(1 << width) - 1})"
            else:
                raise self.unsupported(f"parser transition key of type {kind!r}", ctx.where)
            parts.append((code, (width + 7) // 8 * 8))
        if need:
            ind = self._need(need, out, ind)
        key = _concat(parts)
        total = sum(w for _, w in parts)
        if len(parts) > 1 or not key.isidentifier():
            k = self.tmp()
            out(ind, f"{k} = {key}")
            key = k
        full = (1 << total) - 1
        for i, t in enumerate(cases):
            value = _hex(t["value"]) & full
            mask = t.get("mask")
            cond = f"{key} == {value}"
            if mask is not None:
                m = _hex(mask) & full
                if m != full:
                    cond = f"({key} & {m}) == {value & m}"
            out(ind, f"{'if' if i == 0 else 'elif'} {cond}:")
            out(ind + 1, f"st = {target(t)}")
        out(ind, "else:")
        out(ind + 1, f"st = {default}")

    # -- checksums -------------------------------------------------------------------------------
    def _checksums(self, which: str) -> list[dict[str, Any]]:
        chosen = []
        for c in self.j.get("checksums") or []:
            if c.get("type", "generic") != "generic":
                raise self.unsupported(f"checksum type {c.get('type')!r}", c.get("name", ""))
            if c.get(which, True):
                chosen.append(c)
        return chosen

    def _checksum_parts(self, c: dict[str, Any], ctx: Ctx) -> tuple[str, str, str]:
        hdr, fname = self.field_ref(c["target"], ctx)
        cond = "True"
        if c.get("if_cond") is not None:
            cond = self.boolean(c["if_cond"], ctx).code
        return hdr.vars[fname], hdr.valid, cond

    def _emit_verify(self, out: Out, ind: int) -> None:
        for c in self._checksums("verify"):
            ctx = Ctx(f"checksum {c['name']}")
            var, valid, cond = self._checksum_parts(c, ctx)
            guard = valid if cond == "True" else f"{valid} and {cond}"
            out(ind, f"if {guard}:")
            result = self.calculation(c["calculation"], ctx, out, ind + 1,
                                      frozenset({valid}))
            out(ind + 1, f"if {result} != {var}:")
            out(ind + 2, "cerr = 1")

    def _emit_update(self, out: Out, ind: int) -> None:
        for c in self._checksums("update"):
            ctx = Ctx(f"checksum {c['name']}")
            var, _, cond = self._checksum_parts(c, ctx)
            hdr, fname = self.field_ref(c["target"], ctx)
            width, signed = self.field_info(hdr, fname)
            inner = ind
            if cond != "True":
                out(ind, f"if {cond}:")
                inner = ind + 1
            result = self.calculation(c["calculation"], ctx, out, inner)
            out(inner, f"{var} = {self.fit(Ex(result), width, signed)}")

    # -- deparser --------------------------------------------------------------------------------
    def _emit_deparser(self, out: Out, ind: int) -> None:
        dep = self.j["deparsers"][0]
        if dep.get("primitives"):
            raise self.unsupported("primitives in the deparser", dep.get("name", "deparser"))
        parts = self.tmp()
        out(ind, f"{parts} = []")
        for name in dep.get("order") or []:
            hdr = self.headers.get(name)
            if hdr is None:
                raise KeyError(f"deparser: unknown header {name!r}")
            if hdr.metadata:
                continue
            lay = self.layout(hdr)
            out(ind, f"if {hdr.valid}:")
            if not hdr.fields:
                out(ind + 1, "pass")
                continue
            pack = self.const(f"_pack_{hdr.type_name}", struct.Struct(lay.fmt).pack)
            args: list[str] = []
            for members, pieces in lay.groups:
                items = []
                for idx, shift, width in members:
                    fname, _, signed = hdr.fields[idx]
                    code = hdr.vars[fname]
                    if signed:
                        code = f"({code} & {(1 << width) - 1})"
                    items.append((code, shift))
                group = " | ".join(f"({c} << {s})" if s else c for c, s in items)
                if len(items) > 1:
                    group = f"({group})"
                args.extend(_split_pieces(group, pieces))
            out(ind + 1, f"{parts}.append({pack}({', '.join(args)}))")
        out(ind, f"{parts}.append(frame[pos:])")
        data = self.tmp()
        out(ind, f"{data} = b''.join({parts})")
        out(ind, f"if 0 <= trunc < len({data}):")
        out(ind + 1, f"{data} = {data}[:trunc]")
        output = self.const("_Output", Output)
        out(ind, f"return [{output}(port, prio, {data})]")

    # -- pipelines -------------------------------------------------------------------------------
    def _emit_pipeline(self, name: str, out: Out, ind: int) -> None:
        pipe = next(p for p in self.j["pipelines"] if p["name"] == name)
        tables = {t["name"]: t for t in pipe.get("tables") or []}
        conds = {c["name"]: c for c in pipe.get("conditionals") or []}
        calls = {c["name"]: c for c in pipe.get("action_calls") or []}
        nodes: dict[str, tuple[str, dict[str, Any]]] = {}
        for kind, group in (("table", tables), ("cond", conds), ("call", calls)):
            for n, obj in group.items():
                if n in nodes:
                    raise ValueError(f"pipeline {name}: two nodes named {n!r}")
                nodes[n] = (kind, obj)
        init = pipe.get("init_table")
        if init is None:
            return
        if init not in nodes:
            raise KeyError(f"pipeline {name}: unknown init node {init!r}")

        def succ(n: str) -> list[str]:
            kind, obj = nodes[n]
            if kind == "table":
                nxt = list((obj.get("next_tables") or {}).values())
                nxt.append(obj.get("base_default_next"))
            elif kind == "cond":
                nxt = [obj.get("true_next"), obj.get("false_next")]
            else:
                nxt = [obj.get("next_node")]
            for x in nxt:
                if x is not None and x not in nodes:
                    raise KeyError(f"pipeline {name}: unknown node {x!r} after {n!r}")
            return [x for x in nxt if x is not None]

        order, cyclic = _order(init, succ)
        ids = {n: i for i, n in enumerate(order)}

        def nid(n: str | None) -> int:
            return END if n is None else ids[n]

        out(ind, f"nx = {ids[init]}  # pipeline {name}")
        out(ind, "ex = False")
        if cyclic:
            out(ind, "while nx >= 0:")
            ind += 1
        for i, n in enumerate(order):
            kind, obj = nodes[n]
            kw = "elif" if cyclic and i else "if"
            out(ind, f"{kw} nx == {i}:  # {kind} {n}")
            if kind == "cond":
                ctx = Ctx(f"condition {n}")
                cond = self.boolean(obj.get("expression"), ctx)
                t, f = nid(obj.get("true_next")), nid(obj.get("false_next"))
                out(ind + 1, f"nx = {t} if {cond.code} else {f}" if t != f else f"nx = {t}")
            elif kind == "call":
                action = self._actions_by_id[obj["action_id"]]
                if action.get("runtime_data"):
                    raise ValueError(f"action call {n}: the action takes parameters")
                self._saw_exit = False
                self.action_body(action, Ctx(f"action {action['name']}"), out, ind + 1)
                nxt = nid(obj.get("next_node"))
                out(ind + 1, f"nx = -1 if ex else {nxt}" if self._saw_exit else f"nx = {nxt}")
            else:
                self._table_node(obj, nid, out, ind + 1)

    def _table_node(self, t: dict[str, Any], nid: Callable[[str | None], int], out: Out,
                    ind: int) -> None:
        name = t["name"]
        state = self.tables[name]
        where = f"table {name}"
        next_tables = t.get("next_tables") or {}
        hit_next = nid(next_tables["__HIT__"]) if "__HIT__" in next_tables else None
        miss_next = nid(next_tables["__MISS__"]) if "__MISS__" in next_tables else None
        base = nid(t.get("base_default_next"))
        by_action = [nid(next_tables[a]) if a in next_tables else base
                     for a in state.spec.actions]
        ids = t.get("action_ids") or []
        self._saw_exit = False
        tv = self.const(f"T_{name}", state)
        keyed = bool(state.layout)
        inline_default = (not keyed and state.const_default and state.default_entry_const
                          and state.initial_default is not None)
        if inline_default:
            aname, params = state.initial_default  # type: ignore[misc]
            aidx = state.action_index[aname]
            action = self._actions_by_id[ids[aidx]]
            widths = [w for _, w in state.actions[aidx].params]
            ctx = Ctx(f"action {aname} (table {name})",
                      [Ex(str(v), bits=max(v.bit_length(), 1), const=v)
                       for v, _w in zip(params, widths, strict=True)])
            self.action_body(action, ctx, out, ind)
            nxt = miss_next if miss_next is not None else by_action[aidx]
            out(ind, f"nx = -1 if ex else {nxt}" if self._saw_exit else f"nx = {nxt}")
            return
        need_hit = hit_next is not None or miss_next is not None
        if not keyed:
            out(ind, f"e = {tv}.default")
            if need_hit:
                out(ind, "hit = False")
        else:
            key_code = self._key_code(t, state, Ctx(where))
            if state.mode == "exact":
                lookup = self.const(f"E_{name}", state.exact)
                out(ind, f"e = {lookup}.get({key_code})")
            else:
                lookup = self.const(f"L_{name}", state.lookup)
                out(ind, f"e = {lookup}({key_code})")
            out(ind, "if e is None:")
            out(ind + 1, f"e = {tv}.default")
            if need_hit:
                out(ind + 1, "hit = False")
                out(ind, "else:")
                out(ind + 1, "hit = True")
            if state.spec.direct_counter:
                if not need_hit:
                    out(ind, "else:")
                out(ind + 1, "e.packets += 1")
                out(ind + 1, "e.bytes += ilen")
        out(ind, "a = e.aidx")
        for i, aid in enumerate(ids):
            action = self._actions_by_id[aid]
            spec = state.actions[i]
            out(ind, f"{'if' if i == 0 else 'elif'} a == {i}:  # {spec.name}")
            ctx = Ctx(f"action {spec.name} (table {name})",
                      [Ex(f"ap{k}", bits=w) for k, (_, w) in enumerate(spec.params)])
            if spec.params:
                names = ", ".join(f"ap{k}" for k in range(len(spec.params)))
                out(ind + 1, f"{names}, = e.params")
            self.action_body(action, ctx, out, ind + 1)
        table = tuple(by_action) + (miss_next if miss_next is not None else base,)
        on_action = str(table[0]) if len(set(table)) == 1 else f"{table!r}[a]"
        if hit_next is not None and miss_next is not None:
            nxt = f"{hit_next} if hit else {miss_next}"
        elif hit_next is not None:
            nxt = f"{hit_next} if hit else {on_action}"
        elif miss_next is not None:
            nxt = f"{on_action} if hit else {miss_next}"
        else:
            nxt = on_action
        if self._saw_exit:
            out(ind, f"nx = -1 if ex else ({nxt})")
        else:
            out(ind, f"nx = {nxt}")

    def _key_code(self, t: dict[str, Any], state: TableState, ctx: Ctx) -> str:
        parts = []
        for k, lay in zip(t.get("key") or [], state.layout, strict=True):
            target = k.get("target")
            if k.get("match_type") == "valid":
                hname = target if isinstance(target, str) else target[0]
                code = f"(1 if {self.headers[hname].valid} else 0)"
            else:
                ex = self.field_value(target, ctx)
                code = ex.code
                if ex.bits is None:
                    code = f"({code} & {(1 << lay.bitwidth) - 1})"
            mask = k.get("mask")
            if mask is not None:
                code = f"({code} & {_hex(mask) & ((1 << lay.bitwidth) - 1)})"
            parts.append(code)
        if len(parts) == 1:
            return parts[0]
        return "(" + ", ".join(parts) + ")"


# -- code helpers --------------------------------------------------------------------------------
_ARITH = {"+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^"}
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def _arith(op: str, a: Ex, b: Ex) -> Ex:
    if a.const is not None and b.const is not None:
        x, y = int(a.const), int(b.const)
        if op == "+":
            r = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op == "/":
            r = x // y if y else 0
        elif op == "%":
            r = x % y if y else 0
        elif op == "<<":
            r = x << y
        elif op == ">>":
            r = x >> y
        elif op == "&":
            r = x & y
        elif op == "|":
            r = x | y
        else:
            r = x ^ y
        return Ex(str(r), bits=r.bit_length() if r >= 0 else None, const=r)
    bits: int | None = None
    if op == "&":
        known = [x for x in (a.bits, b.bits) if x is not None]
        bits = min(known) if known else None
        if b.const is not None and b.const >= 0 and a.bits is not None and b.const == (
                1 << a.bits) - 1:
            return a  # masking to the operand's own width: a no-op
    elif op in ("|", "^"):
        bits = max(a.bits, b.bits) if a.bits is not None and b.bits is not None else None
    elif op == "+":
        bits = max(a.bits, b.bits) + 1 if a.bits is not None and b.bits is not None else None
    elif op == "*":
        bits = a.bits + b.bits if a.bits is not None and b.bits is not None else None
    elif op == ">>":
        bits = a.bits
    elif op == "<<" and a.bits is not None and b.const is not None:
        bits = a.bits + int(b.const)
    elif op == "%" and a.bits is not None and b.bits is not None:
        bits = b.bits
    elif op == "/" and a.bits is not None and b.bits is not None:
        bits = a.bits
    if op == "/":
        return Ex(f"_div({a.code}, {b.code})", bits=bits)
    if op == "%":
        return Ex(f"_mod({a.code}, {b.code})", bits=bits)
    return Ex(f"({a.code} {op} {b.code})", bits=bits)


def _signed_code(code: str, width: int) -> str:
    half = 1 << (width - 1)
    return f"((({code}) + {half} & {(1 << width) - 1}) - {half})"


def _from_unsigned(var: str, width: int) -> str:
    half = 1 << (width - 1)
    return f"(({var} ^ {half}) - {half})"


def _concat(parts: list[tuple[str, int]]) -> str:
    """Source concatenating (code, width) values, the first part most significant."""
    total = sum(w for _, w in parts)
    items = []
    for code, width in parts:
        total -= width
        items.append(f"({code} << {total})" if total else code)
    if len(items) == 1:
        return items[0]
    return "(" + " | ".join(items) + ")"


def _pieces(nbytes: int) -> list[tuple[str, int]]:
    """struct codes reading `nbytes` bytes as few integers as possible."""
    if nbytes in (1, 2, 4, 8):
        return [({1: "B", 2: "H", 4: "I", 8: "Q"}[nbytes], nbytes)]
    if nbytes > 8:
        return [(f"{nbytes}s", nbytes)]
    pieces = []
    left = nbytes
    for size, code in ((4, "I"), (2, "H"), (1, "B")):
        while left >= size:
            pieces.append((code, size))
            left -= size
    return pieces


def _join_pieces(names: list[str], pieces: list[tuple[str, int]]) -> str:
    if len(pieces) == 1 and pieces[0][0].endswith("s"):
        return f"int.from_bytes({names[0]}, 'big')"
    total = sum(size for _, size in pieces) * 8
    items = []
    for name, (_, size) in zip(names, pieces, strict=True):
        total -= size * 8
        items.append(f"({name} << {total})" if total else name)
    return "(" + " | ".join(items) + ")" if len(items) > 1 else items[0]


def _split_pieces(group: str, pieces: list[tuple[str, int]]) -> list[str]:
    if len(pieces) == 1:
        code, size = pieces[0]
        if code.endswith("s"):
            return [f"{group}.to_bytes({size}, 'big')"]
        return [group]
    total = sum(size for _, size in pieces) * 8
    args = []
    for _, size in pieces:
        total -= size * 8
        shifted = f"({group} >> {total})" if total else group
        args.append(f"({shifted} & {(1 << (size * 8)) - 1})" if args else shifted)
    return args


def _order(init: str, succ: Callable[[str], list[str]]) -> tuple[list[str], bool]:
    """Nodes reachable from `init` in topological order, and whether there is a cycle
    (then the order is only a DFS order and the caller loops)."""
    order: list[str] = []
    state: dict[str, int] = {}
    cyclic = False
    stack: list[tuple[str, int]] = [(init, 0)]
    state[init] = 1
    while stack:
        node, i = stack.pop()
        nxt = succ(node)
        if i < len(nxt):
            stack.append((node, i + 1))
            child = nxt[i]
            s = state.get(child, 0)
            if s == 0:
                state[child] = 1
                stack.append((child, 0))
            elif s == 1:
                cyclic = True
        else:
            state[node] = 2
            order.append(node)
    order.reverse()
    order.remove(init)
    return [init, *order], cyclic


def _clock() -> Callable[[], int]:
    start = time.monotonic()

    def now_us() -> int:
        return int((time.monotonic() - start) * 1e6)

    return now_us


def _log_msg(fmt: str, values: tuple[int, ...]) -> None:
    text = fmt
    for v in values:
        text = text.replace("{}", str(v), 1)
    log.info("%s", text)


def _assert_failed(kind: str, where: str) -> None:
    log.error("%s failed in %s: packet dropped", kind, where)


def _div(a: int, b: int) -> int:
    return a // b if b else 0


def _mod(a: int, b: int) -> int:
    return a % b if b else 0


def _chain(alternatives: list[tuple[str | None, str]], default: str) -> str:
    """A conditional expression choosing among (condition, code) alternatives."""
    code = default
    for cond, value in reversed(alternatives):
        code = value if cond is None else f"({value} if {cond} else {code})"
    return code


class _Branches:
    """Iterating emits `if cond:` / `elif cond:` / `else:` and yields (header, indent)
    for the caller to fill in the body of each branch."""

    def __init__(self, alternatives: list[tuple[str | None, Any]], out: Out, ind: int) -> None:
        self.alternatives = alternatives
        self.out = out
        self.ind = ind

    def __iter__(self):  # type: ignore[no-untyped-def]
        for i, (cond, hdr) in enumerate(self.alternatives):
            if cond is None:
                self.out(self.ind, "else:")
            else:
                self.out(self.ind, f"{'if' if i == 0 else 'elif'} {cond}:")
            yield hdr, self.ind + 1


_multicast_logged = False


def _refuse_multicast(group: int) -> None:
    global _multicast_logged
    if not _multicast_logged:
        log.error("multicast group %d requested: the built-in target has no packet"
                  " replication engine; such packets are dropped", group)
        _multicast_logged = True
