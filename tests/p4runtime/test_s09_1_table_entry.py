"""§9.1 TableEntry: match format (§9.1.1), actions (§9.1.2), default entries (§9.1.3),
wildcard reads (§9.1.6), direct resources (§9.1.7), idle timeout (§9.1.8)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from finsy.proto import p4r

from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import Session

INSERT, MODIFY, DELETE = ent.INSERT, ent.MODIFY, ent.DELETE


def insert(p4rt: Session, te: p4r.TableEntry) -> str:
    return p4rt.write(ent.update(INSERT, te)).item


def read_table(p4rt: Session, alias: str, **filters: object) -> list[p4r.TableEntry]:
    query = p4r.TableEntry(table_id=ent.table(alias).preamble.id, **filters)  # type: ignore[arg-type]
    outcome = p4rt.read(ent.entity(query))
    assert outcome.code == "OK", outcome
    return [e.table_entry for e in outcome.entities]


# -- §9.1: keys, priorities, const flags -------------------------------------------------------
@pytest.mark.spec("§9.1")
def test_entries_of_a_ternary_table_need_a_priority(p4rt: Session) -> None:
    assert insert(p4rt, ent.rank(priority=0)) == "INVALID_ARGUMENT"
    assert insert(p4rt, ent.rank(priority=1)) == "OK"


@pytest.mark.spec("§9.1")
def test_entries_of_an_exact_table_take_no_priority(p4rt: Session) -> None:
    te = ent.flow_id()
    te.priority = 3
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1")
def test_a_keyless_table_takes_no_match_entry(p4rt: Session,
                                              expect: Callable[..., str]) -> None:
    te = ent.entry("sched_mode", action=ent.call("set_mode", mode=1, burst_pct=10,
                                                  queue_depth=64))
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1")
def test_is_const_in_a_write_is_refused(p4rt: Session, expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.is_const = True
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1")
def test_metadata_and_controller_metadata_are_read_back(p4rt: Session,
                                                        expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.metadata = b"\x00cookie\xff"
    te.controller_metadata = 0xDEADBEEF
    assert insert(p4rt, te) == "OK"
    [got] = read_table(p4rt, "fastpath_flow_ids")
    observed = "kept" if (got.metadata, got.controller_metadata) == (
        te.metadata, te.controller_metadata) else f"{got.metadata!r}/{got.controller_metadata}"
    assert observed == expect("kept")


@pytest.mark.spec("§9.1")
def test_a_full_table_refuses_more_entries(p4rt: Session, expect: Callable[..., str]) -> None:
    t = "fastpath_local"
    size = ent.table(t).size
    fill = [ent.update(INSERT, ent.entry(t, ent.exact(t, "dst_addr", i),
                                         action=ent.call("fastpath_here")))
            for i in range(1, size + 1)]
    assert p4rt.write(*fill).code == "OK"
    extra = ent.entry(t, ent.exact(t, "dst_addr", size + 1), action=ent.call("fastpath_here"))
    assert insert(p4rt, extra) == expect("RESOURCE_EXHAUSTED")


@pytest.mark.spec("§12")
def test_insert_modify_delete_of_present_and_missing_entries(p4rt: Session) -> None:
    assert insert(p4rt, ent.flow_id(1)) == "OK"
    assert insert(p4rt, ent.flow_id(1)) == "ALREADY_EXISTS"
    assert p4rt.write(ent.update(MODIFY, ent.flow_id(2))).item == "NOT_FOUND"
    assert p4rt.write(ent.update(DELETE, ent.flow_id(2))).item == "NOT_FOUND"
    assert p4rt.write(ent.update(DELETE, ent.flow_id(1))).item == "OK"
    assert read_table(p4rt, "fastpath_flow_ids") == []


@pytest.mark.spec("§9.1")
def test_delete_ignores_everything_but_the_key(p4rt: Session) -> None:
    assert insert(p4rt, ent.flow_id(1)) == "OK"
    key = ent.flow_id(1)
    key.action.action.action_id = 0x0BADBEEF  # nonsense, ignored
    key.metadata = b"other"
    assert p4rt.write(ent.update(DELETE, key)).item == "OK"


# -- §9.1.1 match format -----------------------------------------------------------------------
@pytest.mark.spec("§9.1.1")
def test_a_dont_care_ternary_field_must_be_omitted(p4rt: Session,
                                                   expect: Callable[..., str]) -> None:
    te = ent.rank()
    te.match.append(ent.ternary("flow_rank", "dst_addr", 0, 0))
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1.1")
def test_a_dont_care_range_field_must_be_omitted(p4rt: Session,
                                                 expect: Callable[..., str]) -> None:
    assert insert(p4rt, ent.queue_range(0, 0xFFFF)) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1.1")
def test_a_dont_care_lpm_field_must_be_omitted(p4rt: Session) -> None:
    assert insert(p4rt, ent.route(0, 0)) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_lpm_value_bits_past_the_prefix_are_refused(p4rt: Session) -> None:
    assert insert(p4rt, ent.route(0x0A000101, 24)) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_lpm_prefix_longer_than_the_field_is_refused(p4rt: Session) -> None:
    assert insert(p4rt, ent.route(0x0A000100, 33)) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_ternary_value_bits_outside_the_mask_are_refused(p4rt: Session) -> None:
    te = ent.entry("flow_rank", ent.ternary("flow_rank", "src_addr", 0x0A000001, 0xFFFFFF00),
                   action=ent.call("set_rank", rank=1), priority=1)
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_a_range_with_low_above_high_is_refused(p4rt: Session) -> None:
    assert insert(p4rt, ent.queue_range(10, 5)) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_an_exact_field_cannot_be_omitted(p4rt: Session) -> None:
    te = ent.decap()
    del te.match[2]
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_an_unknown_match_field_id_is_refused(p4rt: Session) -> None:
    te = ent.flow_id()
    te.match[0].field_id = 99
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_a_match_of_the_wrong_kind_is_refused(p4rt: Session) -> None:
    te = ent.entry("fastpath_flow_ids", ent.lpm("fastpath_flow_ids", "flow_id", 7, 32),
                   action=ent.call("flow_known"))
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.1")
def test_a_match_field_given_twice_is_refused(p4rt: Session,
                                              expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.match.append(ent.exact("fastpath_flow_ids", "flow_id", 7))
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1.1")
def test_a_match_value_wider_than_the_field_is_refused(p4rt: Session) -> None:
    """§9.1.1 asks INVALID_ARGUMENT for a value that breaks the Bytestrings rules; §8.3
    says OUT_OF_RANGE for a rejected bytestring. The table-entry section is the more
    specific; BMv2 agrees."""
    te = ent.flow_id()
    te.match[0].exact.value = b"\x01" + bytes(4)  # 33 bits into bit<32>
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


# -- §9.1.2 action specification ---------------------------------------------------------------
@pytest.mark.spec("§9.1.2")
def test_an_action_outside_the_tables_action_set_is_refused(p4rt: Session) -> None:
    te = ent.entry("fastpath_flow_ids", ent.exact("fastpath_flow_ids", "flow_id", 7),
                   action=ent.call("set_rank", rank=1))
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.2")
def test_an_unknown_action_id_is_refused(p4rt: Session, expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.action.action.action_id = 0x0BADBEEF
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1.2")
def test_a_defaultonly_action_is_refused_in_an_entry(p4rt: Session,
                                                     expect: Callable[..., str]) -> None:
    te = ent.entry("fastpath_flow_ids", ent.exact("fastpath_flow_ids", "flow_id", 7),
                   action=ent.call("NoAction"))
    assert insert(p4rt, te) == expect("PERMISSION_DENIED")


@pytest.mark.spec("§9.1.2")
def test_an_insert_needs_an_action(p4rt: Session) -> None:
    te = ent.flow_id()
    te.ClearField("action")
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.2")
def test_a_modify_without_action_keeps_the_action(p4rt: Session,
                                                  expect: Callable[..., str]) -> None:
    assert insert(p4rt, ent.rank(rank_value=5)) == "OK"
    te = ent.rank()
    te.ClearField("action")
    outcome = p4rt.write(ent.update(MODIFY, te)).item
    [got] = read_table(p4rt, "flow_rank")
    observed = outcome if outcome != "OK" else (
        "kept" if got.action == ent.rank(rank_value=5).action else "changed")
    assert observed == expect("kept")


@pytest.mark.spec("§9.1.2")
def test_action_profile_actions_on_a_direct_table_are_refused(p4rt: Session) -> None:
    te = ent.flow_id()
    te.action.ClearField("action")
    te.action.action_profile_member_id = 1
    assert insert(p4rt, te) == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.2")
@pytest.mark.parametrize("change", ["missing", "extra", "twice", "too_wide", "empty"])
def test_action_params_must_match_the_p4info(p4rt: Session, change: str,
                                             expect: Callable[..., str]) -> None:
    te = ent.rank()
    params = te.action.action.params
    if change == "missing":
        del params[0]
    elif change == "extra":
        params.add(param_id=9, value=b"\x01")
    elif change == "twice":
        params.add(param_id=params[0].param_id, value=b"\x01")
    elif change == "too_wide":
        params[0].value = b"\x01\x00\x00"  # 17 bits into bit<16>
    else:
        params[0].value = b""  # §8.3: the server always rejects an empty bytestring
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT", change)


# -- §9.1.3 default entry ----------------------------------------------------------------------
@pytest.mark.spec("§9.1.3")
@pytest.mark.parametrize("kind", ["INSERT", "DELETE"])
def test_a_default_entry_can_only_be_modified(p4rt: Session, kind: str) -> None:
    te = ent.default_of("fastpath_miss", ent.call("to_cpu"))
    assert p4rt.write(ent.update(getattr(p4r.Update, kind), te)).item == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.3")
def test_a_default_entry_with_a_priority_is_refused(p4rt: Session,
                                                    expect: Callable[..., str]) -> None:
    te = ent.default_of("flow_rank", ent.call("set_rank", rank=3))
    te.priority = 10
    assert p4rt.write(ent.update(MODIFY, te)).item == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1.3")
def test_a_default_entry_with_a_match_is_refused(p4rt: Session) -> None:
    te = ent.default_of("fastpath_flow_ids", ent.call("NoAction"))
    te.match.append(ent.exact("fastpath_flow_ids", "flow_id", 7))
    assert p4rt.write(ent.update(MODIFY, te)).item == "INVALID_ARGUMENT"


@pytest.mark.spec("§9.1.3")
def test_a_defaultonly_action_is_a_valid_default(p4rt: Session) -> None:
    te = ent.default_of("fastpath_flow_ids", ent.call("NoAction"))
    assert p4rt.write(ent.update(MODIFY, te)).item == "OK"


@pytest.mark.spec("§9.1.3")
def test_modifying_the_default_without_action_restores_the_programs(p4rt: Session) -> None:
    [initial] = read_table(p4rt, "fastpath_miss", is_default_action=True)
    changed = ent.default_of("fastpath_miss", ent.call("to_cpu"))
    assert p4rt.write(ent.update(MODIFY, changed)).item == "OK"
    [now] = read_table(p4rt, "fastpath_miss", is_default_action=True)
    assert now.action == changed.action
    assert p4rt.write(ent.update(MODIFY, ent.default_of("fastpath_miss"))).item == "OK"
    [back] = read_table(p4rt, "fastpath_miss", is_default_action=True)
    assert back.action == initial.action


# -- §9.1.6 wildcard reads ---------------------------------------------------------------------
@pytest.fixture
def ranks(p4rt: Session) -> list[p4r.TableEntry]:
    entries = [ent.rank(src=0x0A000001 + i, priority=10 + i, rank_value=i) for i in range(3)]
    assert p4rt.write(*[ent.update(INSERT, e) for e in entries]).code == "OK"
    return entries


@pytest.mark.spec("§9.1.6")
def test_a_read_filtered_by_priority_returns_that_priority(
        p4rt: Session, ranks: list[p4r.TableEntry], expect: Callable[..., str]) -> None:
    got = sorted(e.priority for e in read_table(p4rt, "flow_rank", priority=11))
    observed = {(11,): "filtered", (10, 11, 12): "unfiltered"}.get(tuple(got), str(got))
    assert observed == expect("filtered")


@pytest.mark.spec("§9.1.6")
def test_a_read_filtered_by_match_returns_one_entry(p4rt: Session,
                                                    ranks: list[p4r.TableEntry]) -> None:
    got = read_table(p4rt, "flow_rank", match=ranks[2].match, priority=12)
    assert [e.priority for e in got] == [12]


@pytest.mark.spec("§9.1.6")
def test_a_read_filtered_by_action_returns_that_action(p4rt: Session,
                                                       expect: Callable[..., str]) -> None:
    assert insert(p4rt, ent.route(0x0A000100, 24)) == "OK"
    dropped = ent.entry("ipv4_lpm", ent.lpm("ipv4_lpm", "dst_addr", 0x0A000200, 24),
                        action=ent.call("no_route"))
    assert insert(p4rt, dropped) == "OK"
    got = read_table(p4rt, "ipv4_lpm", action=ent.call("no_route"))
    observed = "filtered" if [e.action for e in got] == [dropped.action] else f"{len(got)}"
    assert observed == expect("filtered")


@pytest.mark.spec("§9.1.6")
def test_a_read_of_every_table_returns_every_entry(p4rt: Session,
                                                   ranks: list[p4r.TableEntry]) -> None:
    assert insert(p4rt, ent.flow_id()) == "OK"
    outcome = p4rt.read(ent.entity(p4r.TableEntry()))
    assert outcome.code == "OK"
    tables = sorted(e.table_entry.table_id for e in outcome.entities)
    assert tables == sorted([ent.table("flow_rank").preamble.id] * 3
                            + [ent.table("fastpath_flow_ids").preamble.id])


@pytest.mark.spec("§9.1.6")
def test_a_read_of_the_default_entry_returns_only_it(p4rt: Session,
                                                     ranks: list[p4r.TableEntry]) -> None:
    got = read_table(p4rt, "flow_rank", is_default_action=True)
    assert [e.is_default_action for e in got] == [True]


# -- §9.1.7 direct resources -------------------------------------------------------------------
@pytest.mark.spec("§9.1.7")
def test_counter_data_is_read_only_when_asked_for(p4rt: Session) -> None:
    assert insert(p4rt, ent.decap()) == "OK"
    [plain] = read_table(p4rt, "fastpath_decap")
    [counted] = read_table(p4rt, "fastpath_decap", counter_data=p4r.CounterData())
    assert not plain.HasField("counter_data")
    assert counted.HasField("counter_data")


@pytest.mark.spec("§9.1.7")
def test_counter_data_on_insert_sets_the_direct_counter(p4rt: Session) -> None:
    te = ent.decap()
    te.counter_data.CopyFrom(p4r.CounterData(packet_count=5, byte_count=500))
    assert insert(p4rt, te) == "OK"
    [got] = read_table(p4rt, "fastpath_decap", counter_data=p4r.CounterData())
    assert (got.counter_data.packet_count, got.counter_data.byte_count) == (5, 500)


@pytest.mark.spec("§9.1.7")
def test_counter_data_for_a_table_without_direct_counter_is_refused(
        p4rt: Session, expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.counter_data.CopyFrom(p4r.CounterData(packet_count=1))
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.1.7")
def test_meter_config_for_a_table_without_meter_is_refused(p4rt: Session,
                                                           expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.meter_config.CopyFrom(p4r.MeterConfig(cir=1, cburst=1, pir=1, pburst=1))
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")


# -- §9.1.8 idle timeout -----------------------------------------------------------------------
@pytest.mark.spec("§9.1.8")
def test_idle_timeout_on_a_table_without_it_is_refused(p4rt: Session,
                                                       expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.idle_timeout_ns = 1_000_000_000
    assert insert(p4rt, te) == expect("INVALID_ARGUMENT")
