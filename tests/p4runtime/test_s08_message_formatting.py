"""§8 General principles for message formatting: unset ids (§8.1.1), read-write symmetry
(§8.2), bytestrings (§8.3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from finsy.proto import p4r

from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import Session


def normalised(te: p4r.TableEntry) -> bytes:
    """An entry with its repeated fields in a fixed order (their order is free, §8.2)."""
    copy = p4r.TableEntry()
    copy.CopyFrom(te)
    matches = sorted(copy.match, key=lambda m: m.field_id)
    del copy.match[:]
    copy.match.extend(matches)
    params = sorted(copy.action.action.params, key=lambda p: p.param_id)
    del copy.action.action.params[:]
    copy.action.action.params.extend(params)
    return copy.SerializeToString(deterministic=True)


@pytest.mark.spec("§8.1.1")
def test_a_zero_table_id_in_a_write_is_refused(p4rt: Session,
                                               expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.table_id = 0
    assert p4rt.write(ent.update(ent.INSERT, te)).item == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§8.2")
@pytest.mark.parametrize("make", [ent.flow_id, ent.rank, ent.route, ent.queue_range, ent.decap],
                         ids=["exact", "ternary", "lpm", "range", "direct"])
def test_an_entry_reads_back_as_written(p4rt: Session, make: Callable[[], p4r.TableEntry]
                                        ) -> None:
    te = make()
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    outcome = p4rt.read(ent.entity(p4r.TableEntry(table_id=te.table_id)))
    assert [normalised(e.table_entry) for e in outcome.entities] == [normalised(te)]


@pytest.mark.spec("§8.3")
def test_a_value_with_leading_zero_bytes_is_accepted_and_read_canonically(
        p4rt: Session) -> None:
    te = ent.flow_id(7)
    te.match[0].exact.value = b"\x00\x00\x00\x07"
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    [got] = p4rt.read(ent.entity(p4r.TableEntry(table_id=te.table_id))).entities
    assert got.table_entry.match[0].exact.value == b"\x07"


@pytest.mark.spec("§8.3")
def test_an_empty_bytestring_is_refused(p4rt: Session, expect: Callable[..., str]) -> None:
    te = ent.flow_id()
    te.match[0].exact.value = b""
    assert p4rt.write(ent.update(ent.INSERT, te)).item == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§8.3")
def test_zero_is_read_as_one_zero_byte(p4rt: Session) -> None:
    te = ent.flow_id(0)
    assert p4rt.write(ent.update(ent.INSERT, te)).code == "OK"
    [got] = p4rt.read(ent.entity(p4r.TableEntry(table_id=te.table_id))).entities
    assert got.table_entry.match[0].exact.value == b"\x00"
