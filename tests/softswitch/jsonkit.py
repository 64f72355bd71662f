"""Build small v1model BMv2 JSON programs by hand, in the shape p4c's bmv2 backend emits,
so that each engine construct can be tested on its own."""

from __future__ import annotations

import copy
from typing import Any

STD_FIELDS = [
    ["ingress_port", 9, False], ["egress_spec", 9, False], ["egress_port", 9, False],
    ["instance_type", 32, False], ["packet_length", 32, False], ["enq_timestamp", 32, False],
    ["enq_qdepth", 19, False], ["deq_timedelta", 32, False], ["deq_qdepth", 19, False],
    ["ingress_global_timestamp", 48, False], ["egress_global_timestamp", 48, False],
    ["mcast_grp", 16, False], ["egress_rid", 16, False], ["checksum_error", 1, False],
    ["parser_error", 32, False], ["priority", 3, False], ["_padding", 3, False]]

ERRORS = [["NoError", 0], ["PacketTooShort", 1], ["NoMatch", 2], ["StackOutOfBounds", 3],
          ["HeaderTooShort", 4], ["ParserTimeout", 5], ["ParserInvalidArgument", 6]]


# -- type/value objects ------------------------------------------------------------------------
def F(header: str, field: str) -> dict[str, Any]:  # noqa: N802 - reads like the JSON
    return {"type": "field", "value": [header, field]}


def H(value: int) -> dict[str, Any]:  # noqa: N802
    return {"type": "hexstr", "value": hex(value) if value >= 0 else "-" + hex(-value)}


def RD(index: int) -> dict[str, Any]:  # noqa: N802
    return {"type": "runtime_data", "value": index}


def HDR(name: str) -> dict[str, Any]:  # noqa: N802
    return {"type": "header", "value": name}


def B(value: bool) -> dict[str, Any]:  # noqa: N802
    return {"type": "bool", "value": value}


def E(op: str, left: Any, right: Any, cond: Any = None) -> dict[str, Any]:  # noqa: N802
    value: dict[str, Any] = {"op": op, "left": left, "right": right}
    if cond is not None:
        value["cond"] = cond
    return {"type": "expression", "value": value}


def VALID(header: str) -> dict[str, Any]:  # noqa: N802
    return E("d2b", None, F(header, "$valid$"))


def prim(op: str, *params: Any) -> dict[str, Any]:
    return {"op": op, "parameters": list(params)}


def assign(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    return prim("assign", dst, src)


def drop() -> dict[str, Any]:
    return prim("mark_to_drop", HDR("standard_metadata"))


def egress(port: int) -> dict[str, Any]:
    return assign(F("standard_metadata", "egress_spec"), H(port))


# -- programs ----------------------------------------------------------------------------------
class Program:
    """A v1model program under construction; `json()` returns the BMv2 JSON dict.

    Starts with `standard_metadata`, a `scalars` metadata header (add fields with
    `scalar`), an empty parser (state `start` accepting) and empty pipelines.
    """

    def __init__(self) -> None:
        self.j: dict[str, Any] = {
            "header_types": [{"name": "scalars_0", "id": 0, "fields": []},
                             {"name": "standard_metadata", "id": 1,
                              "fields": copy.deepcopy(STD_FIELDS)}],
            "headers": [
                {"name": "scalars", "id": 0, "header_type": "scalars_0", "metadata": True},
                {"name": "standard_metadata", "id": 1, "header_type": "standard_metadata",
                 "metadata": True}],
            "header_stacks": [], "header_union_types": [], "header_unions": [],
            "header_union_stacks": [], "field_lists": [], "errors": copy.deepcopy(ERRORS),
            "enums": [],
            "parsers": [{"name": "parser", "id": 0, "init_state": "start", "parse_states": []}],
            "parse_vsets": [],
            "deparsers": [{"name": "deparser", "id": 0, "order": [], "primitives": []}],
            "meter_arrays": [], "counter_arrays": [], "register_arrays": [],
            "calculations": [], "learn_lists": [], "actions": [],
            "pipelines": [
                {"name": "ingress", "id": 0, "init_table": None, "tables": [],
                 "action_profiles": [], "conditionals": [], "action_calls": []},
                {"name": "egress", "id": 1, "init_table": None, "tables": [],
                 "action_profiles": [], "conditionals": [], "action_calls": []}],
            "checksums": [], "force_arith": [], "extern_instances": [], "field_aliases": [
                ["intrinsic_metadata.priority", ["standard_metadata", "priority"]],
                ["intrinsic_metadata.mcast_grp", ["standard_metadata", "mcast_grp"]]],
            "__meta__": {"version": [2, 23], "compiler": "tests/softswitch/jsonkit.py"},
        }
        self._ids: dict[str, int] = {}
        self._states: dict[str, dict[str, Any]] = {}

    def _id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, -1) + 1
        return self._ids[kind]

    def json(self) -> dict[str, Any]:
        parser = self.j["parsers"][0]
        parser["parse_states"] = list(self._states.values()) or [
            {"name": "start", "id": 0, "parser_ops": [], "transition_key": [],
             "transitions": [{"type": "default", "value": None, "mask": None,
                              "next_state": None}]}]
        return copy.deepcopy(self.j)

    # -- headers ---------------------------------------------------------------------------------
    def header(self, name: str, fields: list[tuple[str, int]] | list[tuple[str, int, bool]],
               deparse: bool = True) -> str:
        """A packet header `name` of its own type; deparsed in declaration order."""
        tid = len(self.j["header_types"])
        self.j["header_types"].append({
            "name": f"{name}_t", "id": tid,
            "fields": [[f[0], f[1], f[2] if len(f) > 2 else False] for f in fields]})
        self.j["headers"].append({"name": name, "id": len(self.j["headers"]),
                                  "header_type": f"{name}_t", "metadata": False})
        if deparse:
            self.j["deparsers"][0]["order"].append(name)
        return name

    def scalar(self, name: str, width: int, signed: bool = False) -> dict[str, Any]:
        """A metadata field `scalars.<name>`; returns its field reference."""
        self.j["header_types"][0]["fields"].append([name, width, signed])
        return F("scalars", name)

    # -- parser ----------------------------------------------------------------------------------
    def state(self, name: str, ops: list[dict[str, Any]] | None = None,
              key: list[dict[str, Any]] | None = None,
              cases: list[tuple[Any, Any, str | None]] | None = None,
              default: str | None = None) -> None:
        """A parse state; `cases` are (value hexstr, mask hexstr or None, next state)."""
        transitions = [{"type": "hexstr", "value": v, "mask": m, "next_state": n}
                       for v, m, n in cases or []]
        transitions.append({"type": "default", "value": None, "mask": None,
                            "next_state": default})
        self._states[name] = {"name": name, "id": len(self._states), "parser_ops": ops or [],
                              "transition_key": key or [], "transitions": transitions}

    @staticmethod
    def extract(header: str) -> dict[str, Any]:
        return {"op": "extract", "parameters": [{"type": "regular", "value": header}]}

    # -- actions and control -----------------------------------------------------------------------
    def action(self, name: str, primitives: list[dict[str, Any]],
               params: list[tuple[str, int]] | None = None) -> int:
        aid = len(self.j["actions"])
        self.j["actions"].append({
            "name": name, "id": aid,
            "runtime_data": [{"name": n, "bitwidth": w} for n, w in params or []],
            "primitives": primitives})
        return aid

    def _pipe(self, pipeline: str) -> dict[str, Any]:
        return next(p for p in self.j["pipelines"] if p["name"] == pipeline)

    def start(self, node: str, pipeline: str = "ingress") -> None:
        self._pipe(pipeline)["init_table"] = node

    def table(self, name: str, keys: list[tuple[str, Any, str]], actions: list[int],
              default: int | None = None, default_data: list[int] | None = None,
              next_tables: dict[str, str | None] | None = None, base_next: str | None = None,
              size: int = 1024, const_default: bool = False, pipeline: str = "ingress",
              entries: list[dict[str, Any]] | None = None, counters: bool = False,
              masks: dict[int, int] | None = None) -> None:
        """A table; keys are (match kind, field reference value [h, f], name)."""
        names = [self.j["actions"][a]["name"] for a in actions]
        table: dict[str, Any] = {
            "name": name, "id": self._id("table"),
            "key": [{"match_type": kind, "name": kname, "target": target,
                     "mask": hex((masks or {}).get(i)) if (masks or {}).get(i) else None}
                    for i, (kind, target, kname) in enumerate(keys)],
            "match_type": "exact", "type": "simple", "max_size": size,
            "with_counters": counters, "support_timeout": False, "direct_meters": None,
            "action_ids": actions, "actions": names, "base_default_next": base_next,
            "next_tables": next_tables if next_tables is not None else {n: base_next
                                                                        for n in names},
        }
        if default is not None:
            table["default_entry"] = {
                "action_id": default, "action_const": const_default,
                "action_data": [hex(x) for x in default_data or []],
                "action_entry_const": const_default}
        if entries:
            table["entries"] = entries
        if counters:
            self.j["counter_arrays"].append({"name": f"{name}_counter", "id": self._id("ctr"),
                                             "is_direct": True, "binding": name})
        self._pipe(pipeline)["tables"].append(table)

    def run(self, name: str, primitives: list[dict[str, Any]], next_node: str | None = None,
            pipeline: str = "ingress") -> None:
        """A keyless table with a constant default action, as p4c makes for plain code."""
        aid = self.action(f"{name}_act", primitives)
        self.table(name, [], [aid], default=aid, const_default=True, base_next=next_node,
                   pipeline=pipeline)

    def cond(self, name: str, expression: dict[str, Any], true_next: str | None,
             false_next: str | None, pipeline: str = "ingress") -> None:
        self._pipe(pipeline)["conditionals"].append({
            "name": name, "id": self._id("cond"), "expression": expression,
            "true_next": true_next, "false_next": false_next})

    def counter(self, name: str, size: int) -> None:
        self.j["counter_arrays"].append({"name": name, "id": self._id("ctr"), "size": size,
                                         "is_direct": False})

    def register(self, name: str, size: int, bitwidth: int) -> None:
        self.j["register_arrays"].append({"name": name, "id": self._id("reg"), "size": size,
                                          "bitwidth": bitwidth})

    def calculation(self, name: str, inputs: list[dict[str, Any]], algo: str = "csum16"
                    ) -> None:
        self.j["calculations"].append({"name": name, "id": self._id("calc"), "algo": algo,
                                       "input": inputs})

    def checksum(self, name: str, calculation: str, target: list[str], verify: bool,
                 update: bool, if_cond: dict[str, Any] | None = None) -> None:
        self.j["checksums"].append({"name": name, "id": self._id("cksum"), "target": target,
                                    "type": "generic", "calculation": calculation,
                                    "verify": verify, "update": update, "if_cond": if_cond})


def forward_all(p: Program, port: int = 1) -> None:
    """Ingress: send every packet to `port` (when nothing else is configured)."""
    p.run("tbl_forward", [egress(port)])
    p.start("tbl_forward")
