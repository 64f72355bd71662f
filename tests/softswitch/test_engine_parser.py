"""Parser, deparser and the v1model flow around them: select with masks, composite keys,
lookahead, verify, short packets (PacketTooShort, as BMv2 v1model), drops, egress."""

from __future__ import annotations

from bmv2.softswitch.engine import Engine
from tests.softswitch.jsonkit import (
    VALID,
    E,
    F,
    H,
    Program,
    assign,
    drop,
    egress,
    forward_all,
    prim,
)


def two_headers(p: Program) -> None:
    p.header("eth", [("dst", 48), ("src", 48), ("type", 16)])
    p.header("tag", [("pcp", 3), ("cfi", 1), ("vid", 12), ("type", 16)])


def test_select_on_a_value_reaches_the_next_state_and_deparses_the_rest() -> None:
    p = Program()
    two_headers(p)
    p.state("start", [p.extract("eth")], key=[F("eth", "type")],
            cases=[("0x8100", None, "parse_tag")])
    p.state("parse_tag", [p.extract("tag")])
    forward_all(p, 3)
    e = Engine(p.json())
    frame = bytes(range(12)) + b"\x81\x00" + b"\xa0\x05\x08\x00" + b"payload"
    [out] = e.process(frame, 1)
    assert (out.port, out.frame) == (3, frame)
    untagged = bytes(12) + b"\x08\x00" + b"rest"
    assert e.process(untagged, 1)[0].frame == untagged


def test_select_masks_and_default() -> None:
    """BMv2 compares (key & mask) with (value & mask), cases in order, then default."""
    p = Program()
    p.header("h", [("a", 8), ("b", 8)])
    mark = p.scalar("which", 8)
    p.state("start", [p.extract("h")], key=[F("h", "a")],
            cases=[("0x10", "0xf0", "s1"), ("0x20", "0xff", "s2"), ("0x00", "0x01", "s3")],
            default="s4")
    for i in range(1, 5):
        p.state(f"s{i}", [{"op": "set", "parameters": [mark, H(i)]}])
    p.run("out", [egress(1), assign(F("h", "b"), mark)])
    p.start("out")
    e = Engine(p.json())

    def which(a: int) -> int:
        return e.process(bytes([a, 0]), 0)[0].frame[1]

    assert [which(x) for x in (0x10, 0x1F, 0x20, 0x22, 0x24, 0x21, 0x23)] == [1, 1, 2, 3, 3, 4, 4]


def test_composite_key_is_byte_padded_fields() -> None:
    """A 13-bit and an 8-bit field: the key is 0x0aba03-style, each field byte-padded."""
    p = Program()
    p.header("h", [("flags", 3), ("frag", 13), ("proto", 8)])
    hit = p.scalar("hit", 8)
    p.state("start", [p.extract("h")], key=[F("h", "frag"), F("h", "proto")],
            cases=[("0x000011", None, "udp"), ("0x000100", "0x00ff00", "other")])
    p.state("udp", [{"op": "set", "parameters": [hit, H(1)]}])
    p.state("other", [{"op": "set", "parameters": [hit, H(2)]}])
    p.run("out", [egress(1), assign(F("h", "proto"), hit)])
    p.start("out")
    e = Engine(p.json())

    def run(flags: int, frag: int, proto: int) -> int:
        word = (flags << 13) | frag
        return e.process(word.to_bytes(2, "big") + bytes([proto]), 0)[0].frame[2]

    assert run(0b111, 0, 17) == 1  # flags are not part of the key
    assert run(0, 1, 17) == 2  # frag 1 matches the masked second case
    assert run(0, 2, 17) == 0


def test_lookahead_selects_without_consuming() -> None:
    p = Program()
    p.header("h", [("x", 16)])
    p.header("v4", [("b", 8)])
    p.header("v6", [("b", 8)])
    p.state("start", [], key=[{"type": "lookahead", "value": [4, 4]}],
            cases=[("0x04", None, "four"), ("0x06", None, "six")])
    p.state("four", [p.extract("h"), p.extract("v4")])
    p.state("six", [p.extract("h"), p.extract("v6")])
    p.run("out", [egress(1), assign(F("h", "x"), E("b2d", None, VALID("v6")))])
    p.start("out")
    e = Engine(p.json())
    assert e.process(b"\x04\x00\x07", 0)[0].frame == b"\x00\x00\x07"
    assert e.process(b"\x06\x00\x07", 0)[0].frame == b"\x00\x01\x07"
    assert e.process(b"\x05\x00\x07", 0)[0].frame == b"\x05\x00\x07"


def test_truncated_packet_sets_packet_too_short_and_reaches_ingress() -> None:
    """As BMv2 v1model: headers extracted so far stay valid, the parser error is set,
    ingress runs and can see it; unparsed bytes follow the deparsed headers."""
    p = Program()
    two_headers(p)
    err = p.scalar("err", 32)
    p.state("start", [p.extract("eth")], key=[F("eth", "type")],
            cases=[("0x8100", None, "parse_tag")])
    p.state("parse_tag", [p.extract("tag")])
    p.run("out", [egress(2), assign(err, F("standard_metadata", "parser_error")),
                  assign(F("eth", "src"), err)])
    p.start("out")
    e = Engine(p.json())
    frame = bytes(12) + b"\x81\x00" + b"\xaa\xbb"  # 2 of the tag's 4 bytes
    [out] = e.process(frame, 1)
    assert out.frame == bytes(6) + (1).to_bytes(6, "big") + b"\x81\x00\xaa\xbb"
    [out] = e.process(b"\x01\x02", 1)  # not even Ethernet: nothing valid, bytes kept
    assert out.frame == b"\x01\x02"


def test_verify_sets_the_error_from_the_json() -> None:
    p = Program()
    p.j["errors"].append(["BadVersion", 7])
    p.header("h", [("version", 8)])
    err = p.scalar("err", 32)
    p.state("start", [p.extract("h"), {"op": "verify", "parameters": [
        E("==", F("h", "version"), H(4)), H(7)]}], default="after")
    p.state("after", [{"op": "set", "parameters": [F("h", "version"), H(0x44)]}])
    p.run("out", [egress(1), assign(err, F("standard_metadata", "parser_error")),
                  assign(F("h", "version"), err)])
    p.start("out")
    e = Engine(p.json())
    assert e.process(b"\x04", 0)[0].frame == b"\x00"  # verified, then set to 0x44, then err 0
    assert e.process(b"\x05", 0)[0].frame == b"\x07"  # failed: state "after" never ran


def test_mark_to_drop_drops_and_priority_comes_from_ingress() -> None:
    p = Program()
    p.header("h", [("cmd", 8)])
    p.state("start", [p.extract("h")])
    p.run("prio", [egress(4), assign(F("standard_metadata", "priority"), H(5))], "check")
    p.cond("check", E("==", F("h", "cmd"), H(0)), "dropper", None)
    p.run("dropper", [drop()])
    p.start("prio")
    e = Engine(p.json())
    assert e.process(b"\x00", 0) == []
    [out] = e.process(b"\x01", 0)
    assert (out.port, out.priority, out.frame) == (4, 5, b"\x01")


def test_egress_sees_egress_port_can_drop_and_edit() -> None:
    p = Program()
    p.header("h", [("x", 8), ("port", 8)])
    p.state("start", [p.extract("h")])
    forward_all(p, 7)
    p.run("eg", [assign(F("h", "port"), F("standard_metadata", "egress_port"))], "eg_check",
          pipeline="egress")
    p.cond("eg_check", E("==", F("h", "x"), H(9)), "eg_drop", None, pipeline="egress")
    p.run("eg_drop", [drop()], pipeline="egress")
    p.start("eg", "egress")
    e = Engine(p.json())
    assert e.process(b"\x01\x00", 0)[0].frame == b"\x01\x07"
    assert e.process(b"\x09\x00", 0) == []


def test_exit_ends_ingress_but_not_egress() -> None:
    p = Program()
    p.header("h", [("a", 8), ("b", 8)])
    p.state("start", [p.extract("h")])
    p.run("first", [egress(1), assign(F("h", "a"), H(1)), prim("exit"),
                    assign(F("h", "b"), H(2))], "second")  # BMv2 finishes the action
    p.run("second", [assign(F("h", "a"), H(3))])
    p.start("first")
    p.run("eg", [assign(F("h", "a"), E("+", F("h", "a"), H(0x10)))], pipeline="egress")
    p.start("eg", "egress")
    e = Engine(p.json())
    assert e.process(b"\x00\x00", 0)[0].frame == b"\x11\x02"


def test_add_remove_header_and_packet_length_in_egress() -> None:
    p = Program()
    p.header("outer", [("len", 16)])
    p.header("inner", [("v", 8)])
    p.state("start", [p.extract("inner")])
    p.run("encap", [egress(1), prim("add_header", {"type": "header", "value": "outer"}),
                    prim("remove_header", {"type": "header", "value": "inner"})])
    p.start("encap")
    p.run("eg", [assign(F("outer", "len"), F("standard_metadata", "packet_length"))],
          pipeline="egress")
    p.start("eg", "egress")
    e = Engine(p.json())
    # 5 bytes in, +2 (outer) -1 (inner) = 6; the new header's fields start at zero
    assert e.process(b"\x55abcd", 0)[0].frame == b"\x00\x06abcd"


def test_assign_header_copies_or_invalidates() -> None:
    p = Program()
    p.header("a", [("x", 8), ("y", 8)])
    p.header("b", [("x", 8), ("y", 8)], deparse=False)
    p.j["header_types"][-1]["name"] = "a_t"
    p.j["headers"][-1]["header_type"] = "a_t"
    p.j["deparsers"][0]["order"] = ["b", "a"]
    p.state("start", [p.extract("a")])
    p.run("copy", [egress(1), prim("assign_header", {"type": "header", "value": "b"},
                                   {"type": "header", "value": "a"}),
                   assign(F("b", "y"), H(0xEE))])
    p.start("copy")
    e = Engine(p.json())
    assert e.process(b"\x01\x02", 0)[0].frame == b"\x01\xee\x01\x02"


def test_standard_metadata_at_ingress() -> None:
    p = Program()
    p.header("h", [("port", 16), ("length", 16)])
    p.state("start", [p.extract("h")])
    p.run("meta", [egress(1), assign(F("h", "port"), F("standard_metadata", "ingress_port")),
                   assign(F("h", "length"), F("standard_metadata", "packet_length"))])
    p.start("meta")
    e = Engine(p.json())
    assert e.process(bytes(4) + b"xyz", 300)[0].frame == b"\x01\x2c\x00\x07xyz"


def test_parser_loop_runs_until_accept() -> None:
    """A cyclic parse graph (a state that revisits itself through another)."""
    p = Program()
    p.header("h", [("more", 8)])
    p.header("g", [("more", 8)])
    count = p.scalar("count", 8)
    p.state("start", [p.extract("h")], key=[F("h", "more")], cases=[("0x01", None, "loop")])
    p.state("loop", [{"op": "set", "parameters": [count, E("+", count, H(1))]},
                     p.extract("g")], key=[F("g", "more")], cases=[("0x01", None, "again")])
    p.state("again", [{"op": "set", "parameters": [count, E("+", count, H(1))]}],
            key=[{"type": "lookahead", "value": [0, 8]}], cases=[("0x01", None, "loop")])
    p.run("out", [egress(1), assign(F("h", "more"), count)])
    p.start("out")
    e = Engine(p.json())
    # h=1 -> loop (count 1, g=1) -> again (count 2, next byte 1) -> loop (count 3, g=1) ->
    # again (count 4; next byte 0) -> accept; g holds the last extraction
    assert e.process(b"\x01\x01\x01\x00\x99", 0)[0].frame == b"\x04\x01\x00\x99"


def stack_program() -> Program:
    """A stack of three 1-byte `item` headers parsed with .next while `more` is set."""
    p = Program()
    p.header("head", [("count", 8)])
    for i in range(3):
        p.header(f"items[{i}]", [("more", 1), ("value", 7)])
    for i in (1, 2):
        p.j["headers"][-i]["header_type"] = "items[0]_t"
    p.j["header_stacks"].append({"name": "items", "id": 0, "size": 3,
                                 "header_type": "items[0]_t",
                                 "header_ids": [h["id"] for h in p.j["headers"][-3:]]})
    p.state("start", [p.extract("head")], default="item")
    p.state("item", [{"op": "extract", "parameters": [{"type": "stack", "value": "items"}]}],
            key=[{"type": "stack_field", "value": ["items", "more"]}],
            cases=[("0x01", None, "item")])
    return p


def test_header_stack_next_extraction_last_and_size() -> None:
    p = stack_program()
    size = E("size_stack", None, {"type": "header_stack", "value": "items"})
    last = {"type": "stack_field", "value": ["items", "value"]}
    p.run("out", [egress(1), assign(F("head", "count"),
                                    E("|", E("<<", size, H(4)), last))])
    p.start("out")
    e = Engine(p.json())
    assert e.process(b"\x00\x81\x02rest", 0)[0].frame == b"\x22\x81\x02rest"
    assert e.process(b"\x00\x05", 0)[0].frame == b"\x15\x05"
    # a fourth element overflows: StackOutOfBounds, three extracted
    err = e.process(b"\x00\x81\x82\x83\x04", 0)[0].frame
    assert err == b"\x33\x81\x82\x83\x04"


def test_header_stack_push_pop_and_runtime_index() -> None:
    p = stack_program()
    stack = {"type": "header_stack", "value": "items"}
    element = E("dereference_header_stack", stack, F("head", "count"))
    field = {"type": "expression", "value": {"op": "access_field", "left": element,
                                               "right": 1}}
    p.run("index", [egress(1), assign(field, H(0x7F))], "op")
    p.cond("op", E("==", F("head", "count"), H(0)), "push", "pop")
    p.run("push", [prim("push", stack, H(1)),
                   prim("add_header", {"type": "header", "value": "items[0]"}),
                   assign(F("items[0]", "value"), H(0x11))])
    p.run("pop", [prim("pop", stack, H(2))])
    p.start("index")
    e = Engine(p.json())
    # count 0: items[0].value := 0x7f, then push: [new 0x11, old 0xff, 0x02]; the third
    # element falls off the end
    assert e.process(b"\x00\x81\x82\x03", 0)[0].frame == b"\x00\x11\xff\x82"
    # count 1: items[1].value := 0x7f, then pop 2: only the third element is left
    assert e.process(b"\x01\x81\x82\x03", 0)[0].frame == b"\x01\x03"
    # an index past the stack writes nothing
    assert e.process(b"\x05\x01", 0)[0].frame == b"\x05"


def test_header_chosen_by_a_conditional_expression() -> None:
    p = Program()
    p.header("a", [("x", 8)])
    p.header("b", [("x", 8)])
    p.j["headers"][-1]["header_type"] = "a_t"
    p.header("c", [("x", 8)])
    p.j["headers"][-1]["header_type"] = "a_t"
    p.state("start", [p.extract("a"), p.extract("b")])
    pick = {"type": "expression", "value": {
        "op": "?", "left": {"type": "header", "value": "a"},
        "right": {"type": "header", "value": "b"}, "cond": E(">", F("a", "x"), F("b", "x"))}}
    p.run("mux", [egress(1), prim("assign_header", {"type": "header", "value": "c"}, pick)])
    p.start("mux")
    e = Engine(p.json())
    assert e.process(b"\x09\x03", 0)[0].frame == b"\x09\x03\x09"
    assert e.process(b"\x02\x03", 0)[0].frame == b"\x02\x03\x03"


def test_multicast_copies_are_checked_per_packet() -> None:
    """p4c copies standard_metadata through `inout` action parameters, mcast_grp included:
    loading such a program works, and a packet asking for a group is dropped (no
    replication engine here) rather than forwarded as if unicast."""
    p = Program()
    p.header("h", [("group", 16)])
    p.state("start", [p.extract("h")])
    copy = p.scalar("smeta_mcast_grp", 16)
    p.run("t", [egress(1), assign(copy, F("h", "group")),
                assign(F("standard_metadata", "mcast_grp"), copy)])
    p.start("t")
    e = Engine(p.json())
    assert e.process(b"\x00\x00", 0)[0].port == 1
    assert e.process(b"\x00\x05", 0) == []
