"""Tables: BMv2 match semantics (exact, LPM longest prefix, ternary/range/optional by
priority, larger number wins), hit/miss and per-action next nodes, default actions,
const entries, direct counters, and the control-plane API's error codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmv2.softswitch.engine import Engine, EngineError, MatchKey
from tests.softswitch.jsonkit import E, F, H, Program, assign, egress

K = MatchKey


def keyed_program(kinds: list[str], widths: list[int], size: int = 1024,
                  masks: dict[int, int] | None = None) -> Engine:
    """Header h with key fields k0.. and an output byte `out`; table t sets out := v."""
    p = Program()
    fields = [(f"k{i}", w) for i, w in enumerate(widths)]
    pad = -sum(widths) % 8
    p.header("h", fields + ([("pad", pad)] if pad else []) + [("out", 8)])
    p.state("start", [p.extract("h")])
    setter = p.action("set_out", [assign(F("h", "out"), {"type": "runtime_data", "value": 0})],
                      [("v", 8)])
    noop = p.action("NoAction", [])
    p.run("fwd", [egress(1)], "t")
    p.table("t", [(kind, ["h", f"k{i}"], f"k{i}") for i, kind in enumerate(kinds)],
            [setter, noop], default=noop, size=size, masks=masks)
    p.start("fwd")
    return Engine(p.json())


def out_of(engine: Engine, *values: int) -> int:
    widths = [k.bitwidth for k in engine.tables["t"].keys]
    total = sum(widths)
    pad = -total % 8
    word = 0
    for v, w in zip(values, widths, strict=True):
        word = (word << w) | v
    raw = (word << pad).to_bytes((total + pad) // 8, "big") + b"\x00"
    return engine.process(raw, 0)[0].frame[-1]


def test_exact_match() -> None:
    e = keyed_program(["exact", "exact"], [16, 8])
    e.add_entry("t", [K("exact", 0x1234), K("exact", 7)], "set_out", [1])
    assert out_of(e, 0x1234, 7) == 1
    assert out_of(e, 0x1234, 8) == 0
    assert e.tables["t"].keys[0].name == "k0" and not e.tables["t"].needs_priority


def test_lpm_longest_prefix_wins() -> None:
    e = keyed_program(["lpm"], [32])
    e.add_entry("t", [K("lpm", 0x0A000000, 8)], "set_out", [8])
    e.add_entry("t", [K("lpm", 0x0A010000, 16)], "set_out", [16])
    e.add_entry("t", [K("lpm", 0x0A010200, 24)], "set_out", [24])
    e.add_entry("t", [K("lpm", 0, 0)], "set_out", [99])  # the catch-all route
    assert out_of(e, 0x0A010203) == 24
    assert out_of(e, 0x0A0103FF) == 16
    assert out_of(e, 0x0AFF0000) == 8
    assert out_of(e, 0x0B000000) == 99
    e.delete_entry("t", [K("lpm", 0x0A010200, 24)])
    assert out_of(e, 0x0A010203) == 16


def test_lpm_with_an_exact_field() -> None:
    e = keyed_program(["exact", "lpm"], [8, 32])
    e.add_entry("t", [K("exact", 1), K("lpm", 0x0A000000, 8)], "set_out", [1])
    e.add_entry("t", [K("exact", 2), K("lpm", 0x0A010000, 16)], "set_out", [2])
    assert out_of(e, 1, 0x0A010101) == 1
    assert out_of(e, 2, 0x0A010101) == 2
    assert out_of(e, 2, 0x0A020101) == 0


def test_ternary_highest_priority_wins_whatever_the_order() -> None:
    e = keyed_program(["ternary", "ternary"], [8, 8])
    e.add_entry("t", [K("ternary", 0x10, 0xF0), K("ternary", 0, 0)], "set_out", [1], priority=10)
    e.add_entry("t", [K("ternary", 0x12, 0xFF), K("ternary", 0, 0)], "set_out", [2], priority=20)
    e.add_entry("t", [K("ternary", 0, 0), K("ternary", 5, 0xFF)], "set_out", [3], priority=15)
    assert out_of(e, 0x12, 0) == 2
    assert out_of(e, 0x12, 5) == 2
    assert out_of(e, 0x13, 5) == 3
    assert out_of(e, 0x13, 6) == 1
    assert out_of(e, 0x23, 6) == 0
    e.modify_entry("t", [K("ternary", 0x12, 0xFF), K("ternary", 0, 0)], "set_out", [9],
                   priority=20)
    assert out_of(e, 0x12, 0) == 9
    # same keys, another priority: a distinct entry
    e.add_entry("t", [K("ternary", 0x12, 0xFF), K("ternary", 0, 0)], "set_out", [7], priority=30)
    assert out_of(e, 0x12, 0) == 7
    e.delete_entry("t", [K("ternary", 0x12, 0xFF), K("ternary", 0, 0)], priority=30)
    assert out_of(e, 0x12, 0) == 9
    assert e.tables["t"].needs_priority


def test_equal_priorities_the_first_entry_wins() -> None:
    e = keyed_program(["ternary"], [8])
    e.add_entry("t", [K("ternary", 0x01, 0x0F)], "set_out", [1], priority=5)
    e.add_entry("t", [K("ternary", 0x10, 0xF0)], "set_out", [2], priority=5)
    assert out_of(e, 0x11) == 1


def test_range_and_priority() -> None:
    e = keyed_program(["range"], [16])
    e.add_entry("t", [K("range", 0, 99)], "set_out", [7], priority=1)
    e.add_entry("t", [K("range", 100, 199)], "set_out", [6], priority=1)
    e.add_entry("t", [K("range", 50, 150)], "set_out", [5], priority=2)
    assert [out_of(e, r) for r in (0, 49, 50, 150, 151, 199, 200)] == [7, 7, 5, 5, 6, 6, 0]


def test_optional_is_a_ternary_field_in_the_json() -> None:
    """p4c writes `optional` keys as ternary; P4Runtime sends optional matches."""
    e = keyed_program(["ternary", "ternary"], [8, 8])
    e.add_entry("t", [K("optional", 3, 1), K("optional", 0, None)], "set_out", [1], priority=1)
    e.add_entry("t", [K("optional", 3, 1), K("optional", 4, 1)], "set_out", [2], priority=2)
    assert out_of(e, 3, 9) == 1
    assert out_of(e, 3, 4) == 2
    assert out_of(e, 2, 4) == 0
    with pytest.raises(EngineError) as info:  # same match as the first entry, as ternary
        e.add_entry("t", [K("ternary", 3, 0xFF), K("ternary", 0, 0)], "set_out", [1], priority=1)
    assert info.value.code == "ALREADY_EXISTS"


def test_static_key_mask() -> None:
    e = keyed_program(["exact"], [16], masks={0: 0xFF00})
    e.add_entry("t", [K("exact", 0x1200)], "set_out", [1])
    assert out_of(e, 0x12AB) == 1
    assert out_of(e, 0x13AB) == 0


def test_hit_miss_and_action_next_nodes() -> None:
    p = Program()
    p.header("h", [("k", 8), ("trail", 8)])
    p.state("start", [p.extract("h")])
    a = p.action("a", [])
    b = p.action("b", [])
    p.run("fwd", [egress(1)], "hm")
    p.table("hm", [("exact", ["h", "k"], "k")], [a, b], default=b,
            next_tables={"__HIT__": "on_hit", "__MISS__": "on_miss"})
    p.run("on_hit", [assign(F("h", "trail"), H(1))], "by_action")
    p.run("on_miss", [assign(F("h", "trail"), H(2))], "by_action")
    p.table("by_action", [("exact", ["h", "k"], "k")], [a, b], default=b,
            next_tables={"a": "after_a", "b": "after_b"})
    p.run("after_a", [assign(F("h", "trail"), E("|", F("h", "trail"), H(0x10)))])
    p.run("after_b", [assign(F("h", "trail"), E("|", F("h", "trail"), H(0x20)))])
    p.start("fwd")
    e = Engine(p.json())
    e.add_entry("hm", [K("exact", 1)], "b", [])
    e.add_entry("by_action", [K("exact", 1)], "a", [])
    assert e.process(b"\x01\x00", 0)[0].frame == b"\x01\x11"  # hit (action b), then a
    assert e.process(b"\x02\x00", 0)[0].frame == b"\x02\x22"  # miss, then default b
    e.set_default("by_action", "a", [])
    assert e.process(b"\x02\x00", 0)[0].frame == b"\x02\x12"
    assert e.get_default("by_action") == ("a", [])


def test_default_actions_with_data_and_constant_defaults() -> None:
    p = Program()
    p.header("h", [("k", 8), ("out", 8)])
    p.state("start", [p.extract("h")])
    setter = p.action("set_out", [assign(F("h", "out"), {"type": "runtime_data", "value": 0})],
                      [("v", 8)])
    p.run("fwd", [egress(1)], "t")
    p.table("t", [("exact", ["h", "k"], "k")], [setter], default=setter, default_data=[5],
            base_next="c")
    p.table("c", [("exact", ["h", "k"], "k")], [setter], default=setter, default_data=[6],
            const_default=True)
    p.start("fwd")
    e = Engine(p.json())
    assert e.tables["t"].default_action == "set_out" and e.tables["t"].default_params == [5]
    assert e.process(b"\x00\x00", 0)[0].frame == b"\x00\x06"
    e.set_default("c", "set_out", [6])  # the same as the constant one: accepted
    with pytest.raises(EngineError) as info:
        e.set_default("c", "set_out", [7])
    assert info.value.code == "INVALID_ARGUMENT"
    assert e.tables["c"].const_default_action
    e.set_default("t", "set_out", [9])
    e.reset_state()
    assert e.get_default("t") == ("set_out", [5])


def test_const_entries_from_the_json() -> None:
    p = Program()
    p.header("h", [("k", 8), ("out", 8)])
    p.state("start", [p.extract("h")])
    setter = p.action("set_out", [assign(F("h", "out"), {"type": "runtime_data", "value": 0})],
                      [("v", 8)])
    p.run("fwd", [egress(1)], "t")
    entries = [
        {"match_key": [{"match_type": "ternary", "key": "0x01", "mask": "0x0f"}],
         "action_entry": {"action_id": setter, "action_data": ["0x01"]}, "priority": 1},
        {"match_key": [{"match_type": "ternary", "key": "0x00", "mask": "0x00"}],
         "action_entry": {"action_id": setter, "action_data": ["0x02"]}, "priority": 2},
    ]
    p.table("t", [("ternary", ["h", "k"], "k")], [setter], entries=entries)
    p.start("fwd")
    e = Engine(p.json())
    # BMv2: priority 1 beats 2 (smaller is higher) in the JSON's entries
    assert e.process(b"\x11\x00", 0)[0].frame == b"\x11\x01"
    assert e.process(b"\x12\x00", 0)[0].frame == b"\x12\x02"
    with pytest.raises(EngineError) as info:
        e.add_entry("t", [K("ternary", 5, 0xFF)], "set_out", [1], priority=3)
    assert info.value.code == "INVALID_ARGUMENT"
    e.reset_state()
    assert len(e.entries("t")) == 2


def test_direct_counter_counts_hits_in_ingress_bytes() -> None:
    p = Program()
    p.header("h", [("k", 8)])
    p.state("start", [p.extract("h")])
    a = p.action("a", [])
    p.run("fwd", [egress(1)], "t")
    p.table("t", [("exact", ["h", "k"], "k")], [a], default=a, counters=True)
    p.start("fwd")
    e = Engine(p.json())
    assert e.tables["t"].direct_counter == "t_counter"
    assert e.counters["t_counter"].direct_table == "t"
    e.add_entry("t", [K("exact", 1)], "a", [])
    e.add_entry("t", [K("exact", 2)], "a", [])
    e.process(b"\x01" + bytes(99), 0)
    e.process(b"\x01" + bytes(9), 0)
    e.process(b"\x03", 0)  # a miss counts nowhere
    [one, two] = e.entries("t")
    assert (one.packets, one.bytes, two.packets) == (2, 110, 0)
    e.direct_counter_write("t", [K("exact", 2)], 0, 5, 500)
    e.modify_entry("t", [K("exact", 2)], "a", [])  # keeps the counter
    assert (e.entries("t")[1].packets, e.entries("t")[1].bytes) == (5, 500)
    with pytest.raises(EngineError) as info:
        e.direct_counter_write("t", [K("exact", 3)], 0, 1, 1)
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(EngineError) as info:
        e.counter_read("t_counter", 0)
    assert info.value.code == "INVALID_ARGUMENT"


def test_entries_in_insertion_order_as_copies() -> None:
    e = keyed_program(["exact"], [8])
    for v in (5, 1, 3):
        e.add_entry("t", [K("exact", v)], "set_out", [v])
    e.modify_entry("t", [K("exact", 1)], "NoAction", [])
    entries = e.entries("t")
    assert [x.keys[0].value for x in entries] == [5, 1, 3]
    assert entries[1].action == "NoAction" and entries[1].params == []
    entries[0].params.append(1)
    assert e.entries("t")[0].params == [5]


@pytest.mark.parametrize("call,code", [
    (lambda e: e.add_entry("nope", [K("exact", 1)], "set_out", [1]), "NOT_FOUND"),
    (lambda e: e.add_entry("t", [K("exact", 1)], "set_out", [1]), "ALREADY_EXISTS"),
    (lambda e: e.add_entry("t", [], "set_out", [1]), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("lpm", 2, 8)], "set_out", [1]), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("exact", 256)], "set_out", [1]), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("exact", -1)], "set_out", [1]), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("exact", 2)], "other", [1]), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("exact", 2)], "set_out", []), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("exact", 2)], "set_out", [256]), "INVALID_ARGUMENT"),
    (lambda e: e.add_entry("t", [K("exact", 2)], "set_out", [1], priority=3),
     "INVALID_ARGUMENT"),
    (lambda e: e.modify_entry("t", [K("exact", 2)], "set_out", [1]), "NOT_FOUND"),
    (lambda e: e.delete_entry("t", [K("exact", 2)]), "NOT_FOUND"),
    (lambda e: e.set_default("t", "other", []), "INVALID_ARGUMENT"),
    (lambda e: e.get_default("nope"), "NOT_FOUND"),
    (lambda e: e.entries("nope"), "NOT_FOUND"),
])
def test_api_errors(call, code: str) -> None:  # type: ignore[no-untyped-def]
    e = keyed_program(["exact"], [8])
    e.add_entry("t", [K("exact", 1)], "set_out", [1])
    with pytest.raises(EngineError) as info:
        call(e)
    assert info.value.code == code


@pytest.mark.parametrize("key", [
    K("lpm", 0x0A000001, 24),      # bits past the prefix
    K("lpm", 0, 33),               # prefix longer than the field
    K("ternary", 0x0A000000, 8),   # wrong kind
])
def test_lpm_key_validation(key: MatchKey) -> None:
    e = keyed_program(["lpm"], [32])
    with pytest.raises(EngineError) as info:
        e.add_entry("t", [key], "set_out", [1])
    assert info.value.code == "INVALID_ARGUMENT"


def test_ternary_and_range_key_validation() -> None:
    e = keyed_program(["ternary", "range"], [8, 8])
    for keys in ([K("ternary", 0x11, 0x0F), K("range", 0, 5)],   # value outside the mask
                 [K("ternary", 0x01, 0x0F), K("range", 6, 5)],   # empty range
                 [K("ternary", 0x01, 0x10F), K("range", 0, 5)]):  # mask too wide
        with pytest.raises(EngineError) as info:
            e.add_entry("t", keys, "set_out", [1], priority=1)
        assert info.value.code == "INVALID_ARGUMENT"


def test_table_size_is_enforced() -> None:
    e = keyed_program(["exact"], [8], size=2)
    e.add_entry("t", [K("exact", 1)], "set_out", [1])
    e.add_entry("t", [K("exact", 2)], "set_out", [1])
    with pytest.raises(EngineError) as info:
        e.add_entry("t", [K("exact", 3)], "set_out", [1])
    assert info.value.code == "RESOURCE_EXHAUSTED"
    e.delete_entry("t", [K("exact", 1)])
    e.add_entry("t", [K("exact", 3)], "set_out", [1])


def test_keyless_tables_take_no_entries() -> None:
    p = Program()
    a = p.action("a", [egress(1)])
    p.table("t", [], [a], default=a)
    p.start("t")
    e = Engine(p.json())
    assert e.process(b"x", 0)[0].port == 1
    with pytest.raises(EngineError) as info:
        e.add_entry("t", [], "a", [])
    assert info.value.code == "INVALID_ARGUMENT"


def test_reset_state_empties_tables() -> None:
    e = keyed_program(["exact"], [8])
    e.add_entry("t", [K("exact", 1)], "set_out", [1])
    e.reset_state()
    assert e.entries("t") == []
    assert out_of(e, 1) == 0
    e.add_entry("t", [K("exact", 1)], "set_out", [1])
    assert out_of(e, 1) == 1


def _brute_force(entries: list[tuple[list[MatchKey], int, int]], values: tuple[int, ...],
                 widths: list[int]) -> int | None:
    """The reference: highest priority among matching entries, then the earliest."""
    best: tuple[int, int, int] | None = None
    for order, (keys, priority, tag) in enumerate(entries):
        ok = True
        for key, v, w in zip(keys, values, widths, strict=True):
            full = (1 << w) - 1
            if key.kind == "range":
                ok = key.value <= v <= (key.arg or 0)
            elif key.kind == "lpm":
                mask = full ^ (full >> (key.arg or 0))
                ok = v & mask == key.value
            elif key.kind == "ternary":
                ok = v & (key.arg or 0) == key.value
            else:
                ok = v == key.value
            if not ok:
                break
        if ok and (best is None or priority > best[0]):
            best = (priority, order, tag)
    return None if best is None else best[2]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_priority_tables_agree_with_a_brute_force_reference(data: st.DataObject) -> None:
    kinds = data.draw(st.sampled_from([["ternary", "ternary"], ["ternary", "range"],
                                       ["exact", "ternary"], ["lpm", "ternary"]]))
    widths = [4, 4]
    e = keyed_program(kinds, widths)
    installed: list[tuple[list[MatchKey], int, int]] = []
    for step in range(data.draw(st.integers(1, 40))):
        if installed and data.draw(st.integers(0, 3)) == 0:
            keys, priority, _ = installed.pop(data.draw(st.integers(0, len(installed) - 1)))
            e.delete_entry("t", keys, priority)
        else:
            keys = []
            for kind, w in zip(kinds, widths, strict=True):
                if kind == "ternary":
                    mask = data.draw(st.integers(0, (1 << w) - 1))
                    keys.append(K("ternary", data.draw(st.integers(0, (1 << w) - 1)) & mask,
                                  mask))
                elif kind == "range":
                    lo = data.draw(st.integers(0, (1 << w) - 1))
                    keys.append(K("range", lo, data.draw(st.integers(lo, (1 << w) - 1))))
                elif kind == "lpm":
                    plen = data.draw(st.integers(0, w))
                    full = (1 << w) - 1
                    keys.append(K("lpm", data.draw(st.integers(0, full)) & (full ^ (full >> plen)),
                                  plen))
                else:
                    keys.append(K("exact", data.draw(st.integers(0, (1 << w) - 1))))
            priority = data.draw(st.integers(1, 5))
            tag = step % 200 + 1
            try:
                e.add_entry("t", keys, "set_out", [tag], priority)
            except EngineError as exc:
                assert exc.code == "ALREADY_EXISTS"
                continue
            installed.append((keys, priority, tag))
        for a in range(0, 16, 3):
            for b in range(0, 16, 5):
                want = _brute_force(installed, (a, b), widths)
                assert out_of(e, a, b) == (want or 0), (kinds, installed, a, b)
