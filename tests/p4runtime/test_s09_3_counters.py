"""§9.3 CounterEntry (§9.3.2, indexed counters) and DirectCounterEntry (§9.3.1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from finsy.proto import p4r

from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import Session

COUNTER = "queue_enqueues"  # 8 cells


def counts(p4rt: Session, index: int | None = None) -> list[tuple[int, int, int]]:
    outcome = p4rt.read(ent.counter_entry(COUNTER, index))
    assert outcome.code == "OK", outcome
    return [(e.counter_entry.index.index, e.counter_entry.data.packet_count,
             e.counter_entry.data.byte_count) for e in outcome.entities]


def modify(entity: p4r.Entity, kind: int = ent.MODIFY) -> p4r.Update:
    return p4r.Update(type=kind, entity=entity)  # type: ignore[arg-type]


# -- §9.3.2 CounterEntry -----------------------------------------------------------------------
@pytest.mark.spec("§9.3.2")
def test_a_counter_cell_is_written_and_read(p4rt: Session) -> None:
    assert p4rt.write(modify(ent.counter_entry(COUNTER, 3, 7, 700))).code == "OK"
    assert counts(p4rt, 3) == [(3, 7, 700)]


@pytest.mark.spec("§9.3.2")
def test_a_wildcard_read_returns_every_cell(p4rt: Session) -> None:
    size = ent.counter(COUNTER).size
    assert [i for i, _, _ in counts(p4rt)] == list(range(size))


@pytest.mark.spec("§9.3.2")
def test_counter_id_zero_reads_every_counter(p4rt: Session) -> None:
    outcome = p4rt.read(p4r.Entity(counter_entry=p4r.CounterEntry()))
    assert outcome.code == "OK"
    total = sum(c.size for c in ent.p4info().counters)
    assert len(outcome.entities) == total


@pytest.mark.spec("§9.3.2")
def test_a_modify_without_index_sets_every_cell(p4rt: Session,
                                                expect: Callable[..., str]) -> None:
    outcome = p4rt.write(modify(ent.counter_entry(COUNTER, None, 2, 200))).item
    cells = {(p, b) for _, p, b in counts(p4rt)}
    observed = outcome if outcome != "OK" else ("all set" if cells == {(2, 200)} else str(cells))
    assert observed == expect("all set")


@pytest.mark.spec("§9.3.2")
def test_a_modify_without_data_changes_nothing(p4rt: Session,
                                               expect: Callable[..., str]) -> None:
    assert p4rt.write(modify(ent.counter_entry(COUNTER, 1, 4, 40))).code == "OK"
    outcome = p4rt.write(modify(ent.counter_entry(COUNTER, 1))).item
    cell = counts(p4rt, 1)
    observed = outcome if outcome != "OK" else {(1, 4, 40): "unchanged", (1, 0, 0): "zeroed"}.get(
        cell[0], str(cell))
    assert observed == expect("unchanged")


@pytest.mark.spec("§9.3.2")
@pytest.mark.parametrize("kind", ["INSERT", "DELETE"])
def test_counter_entries_are_only_modified(p4rt: Session, kind: str,
                                          expect: Callable[..., str]) -> None:
    update = modify(ent.counter_entry(COUNTER, 1, 1, 1), getattr(p4r.Update, kind))
    assert p4rt.write(update).item == expect("INVALID_ARGUMENT", kind)


@pytest.mark.spec("§9.3.2")
def test_an_index_past_the_end_is_out_of_range(p4rt: Session,
                                               expect: Callable[..., str]) -> None:
    size = ent.counter(COUNTER).size
    write = p4rt.write(modify(ent.counter_entry(COUNTER, size, 1, 1))).item
    read = p4rt.read(ent.counter_entry(COUNTER, size)).item
    assert write == expect("OUT_OF_RANGE", "write")
    assert read == expect("OUT_OF_RANGE", "read")


@pytest.mark.spec("§9.3.2")
def test_a_negative_index_is_invalid(p4rt: Session, expect: Callable[..., str]) -> None:
    assert p4rt.write(modify(ent.counter_entry(COUNTER, -1, 1, 1))).item == expect(
        "INVALID_ARGUMENT")


@pytest.mark.spec("§9.3.2")
def test_an_unknown_counter_id_is_malformed(p4rt: Session) -> None:
    entity = p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=0x0BADBEEF,
                                                       index=p4r.Index(index=0)))
    assert p4rt.read(entity).item == "INVALID_ARGUMENT"


# -- §9.3.1 DirectCounterEntry -----------------------------------------------------------------
@pytest.mark.spec("§9.3.1")
def test_a_direct_counter_is_written_and_read(p4rt: Session) -> None:
    te = ent.decap()
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    assert p4rt.write(modify(ent.direct_counter(te, packets=3))).item == "OK"
    outcome = p4rt.read(ent.direct_counter(te))
    assert outcome.code == "OK"
    [got] = outcome.entities
    data = got.direct_counter_entry.data
    assert (data.packet_count, data.byte_count) == (3, 300)


@pytest.mark.spec("§9.3.1")
def test_the_direct_counter_of_a_missing_entry_is_not_found(
        p4rt: Session, expect: Callable[..., str]) -> None:
    missing = ent.decap(flow=99)
    assert p4rt.read(ent.direct_counter(missing)).item == expect("NOT_FOUND", "read")
    assert p4rt.write(modify(ent.direct_counter(missing, packets=1))).item == expect(
        "NOT_FOUND", "write")


@pytest.mark.spec("§9.3.1")
@pytest.mark.parametrize("kind", ["INSERT", "DELETE"])
def test_direct_counter_entries_are_only_modified(p4rt: Session, kind: str,
                                                 expect: Callable[..., str]) -> None:
    te = ent.decap()
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    update = modify(ent.direct_counter(te, packets=1), getattr(p4r.Update, kind))
    assert p4rt.write(update).item == expect("INVALID_ARGUMENT", kind)


@pytest.mark.spec("§9.3.1")
def test_a_direct_counter_entry_follows_its_table_entry(p4rt: Session) -> None:
    """"Once the table entry is deleted the associated direct counter entry can no
    longer be accessed"; a new entry with the same key starts from 0."""
    te = ent.decap()
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    assert p4rt.write(modify(ent.direct_counter(te, packets=9))).code == "OK"
    assert p4rt.write(ent.update(ent.DELETE, te)).code == "OK"
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    [got] = p4rt.read(ent.direct_counter(te)).entities
    assert got.direct_counter_entry.data.packet_count == 0
