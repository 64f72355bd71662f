"""§9.7 RegisterEntry: one cell or, without an index, every cell, for reads and writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from finsy.proto import p4r

from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import Session

REGISTER = "sppifo_bounds"  # 8 cells of bit<16>


def modify(entity: p4r.Entity) -> p4r.Update:
    return p4r.Update(type=ent.MODIFY, entity=entity)


def cells(p4rt: Session, index: int | None = None) -> list[tuple[int, bytes]] | str:
    outcome = p4rt.read(ent.register_entry(REGISTER, index))
    if outcome.code != "OK":
        return outcome.item
    return [(e.register_entry.index.index, e.register_entry.data.bitstring)
            for e in outcome.entities]


@pytest.mark.spec("§9.7")
def test_a_register_cell_is_written_and_read(p4rt: Session,
                                             expect: Callable[..., str]) -> None:
    outcome = p4rt.write(modify(ent.register_entry(REGISTER, 2, 300))).item
    got = cells(p4rt, 2)
    observed = outcome if outcome != "OK" else (
        "read back" if got == [(2, ent.enc(300))] else str(got))
    assert observed == expect("read back")


@pytest.mark.spec("§9.7")
def test_a_write_without_index_sets_every_cell(p4rt: Session,
                                               expect: Callable[..., str]) -> None:
    outcome = p4rt.write(modify(ent.register_entry(REGISTER, None, 9))).item
    got = cells(p4rt)
    size = ent.register(REGISTER).size
    observed = outcome if outcome != "OK" else (
        "all set" if got == [(i, b"\x09") for i in range(size)] else str(got))
    assert observed == expect("all set")


@pytest.mark.spec("§9.7")
def test_a_register_index_past_the_end_is_out_of_range(p4rt: Session,
                                                       expect: Callable[..., str]) -> None:
    size = ent.register(REGISTER).size
    assert p4rt.write(modify(ent.register_entry(REGISTER, size, 1))).item == expect(
        "OUT_OF_RANGE", "write")
    assert p4rt.read(ent.register_entry(REGISTER, size)).item == expect("OUT_OF_RANGE",
                                                                         "read")


@pytest.mark.spec("§9.7")
def test_a_negative_register_index_is_invalid(p4rt: Session,
                                              expect: Callable[..., str]) -> None:
    assert p4rt.read(ent.register_entry(REGISTER, -1)).item == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§9.7")
def test_register_data_must_match_its_type(p4rt: Session, expect: Callable[..., str]) -> None:
    too_wide = ent.register_entry(REGISTER, 0, 1 << 16)  # bit<16>
    assert p4rt.write(modify(too_wide)).item == expect("INVALID_ARGUMENT", "width")
    not_bits = ent.register_entry(REGISTER, 0)
    not_bits.register_entry.data.bool = True
    assert p4rt.write(modify(not_bits)).item == expect("INVALID_ARGUMENT", "type")
