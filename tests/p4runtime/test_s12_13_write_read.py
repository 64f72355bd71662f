"""§12 Write RPC (checks in order, batches, atomicity, error reporting) and §13 Read RPC
(no election needed, per-request errors)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from finsy.proto import p4r

from bmv2 import launcher
from tests.p4runtime import client as rt
from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import DEVICE, Session, become_primary


# -- §12 the checks before the updates ---------------------------------------------------------
@pytest.mark.spec("§12")
def test_a_write_to_an_unknown_device_is_not_found(p4rt: Session,
                                                   expect: Callable[..., str]) -> None:
    outcome = p4rt.write(ent.update(ent.INSERT, ent.flow_id()), device_id=DEVICE + 1)
    assert outcome.code == expect("NOT_FOUND")


@pytest.mark.spec("§12")
def test_a_write_for_an_unknown_role_is_not_found(p4rt: Session,
                                                  expect: Callable[..., str]) -> None:
    outcome = p4rt.write(ent.update(ent.INSERT, ent.flow_id()), role="no-such-role")
    assert outcome.code == expect("NOT_FOUND")


@pytest.mark.spec("§12")
def test_a_write_without_the_primarys_election_id_is_denied(p4rt: Session) -> None:
    update = ent.update(ent.INSERT, ent.flow_id())
    assert p4rt.client.write([update], p4rt.election_id + 1).code == "PERMISSION_DENIED"
    assert p4rt.client.write([update], None).code == "PERMISSION_DENIED"


@pytest.mark.spec("§12")
def test_a_write_before_a_pipeline_is_a_failed_precondition(
        fresh_switch: launcher.SwitchProcess) -> None:
    client = rt.Client(fresh_switch.config.grpc_addr, DEVICE)
    stream = become_primary(client, 1)
    assert client.write([ent.update(ent.INSERT, ent.flow_id())], 1).code == (
        "FAILED_PRECONDITION")
    stream.close()
    client.close()


# -- §12.1-12.3 updates, batches, errors -------------------------------------------------------
@pytest.mark.spec("§12.3")
def test_a_batch_reports_one_error_per_update_in_order(p4rt: Session) -> None:
    outcome = p4rt.write(ent.update(ent.INSERT, ent.flow_id(1)),
                         ent.update(ent.INSERT, ent.flow_id(1)),
                         ent.update(ent.DELETE, ent.flow_id(2)),
                         ent.update(ent.INSERT, ent.flow_id(3)))
    assert outcome.code == "UNKNOWN"
    assert outcome.items == ["OK", "ALREADY_EXISTS", "NOT_FOUND", "OK"]


@pytest.mark.spec("§12.2")
def test_continue_on_error_applies_the_good_updates(p4rt: Session) -> None:
    p4rt.write(ent.update(ent.INSERT, ent.flow_id(1)), ent.update(ent.DELETE, ent.flow_id(2)))
    got = p4rt.read(ent.entity(p4r.TableEntry(table_id=ent.flow_id().table_id))).entities
    assert len(got) == 1


@pytest.mark.spec("§12.2")
@pytest.mark.parametrize("mode", ["ROLLBACK_ON_ERROR", "DATAPLANE_ATOMIC"])
def test_optional_atomicity_is_all_or_nothing_or_unimplemented(p4rt: Session,
                                                               mode: str) -> None:
    outcome = p4rt.write(ent.update(ent.INSERT, ent.flow_id(1)),
                         ent.update(ent.DELETE, ent.flow_id(2)),
                         atomicity=getattr(p4r.WriteRequest, mode))
    left = p4rt.read(ent.entity(p4r.TableEntry(table_id=ent.flow_id().table_id))).entities
    assert outcome.code == "UNIMPLEMENTED" and not left or (
        outcome.code == "UNKNOWN" and not left), f"{outcome} left {len(left)} entries"


@pytest.mark.spec("§12")
def test_an_update_of_unspecified_type_is_refused(p4rt: Session) -> None:
    update = ent.update(p4r.Update.UNSPECIFIED, ent.flow_id())
    assert p4rt.write(update).item == "INVALID_ARGUMENT"


@pytest.mark.spec("§12")
def test_an_update_without_entity_is_refused(p4rt: Session,
                                             expect: Callable[..., str]) -> None:
    update = p4r.Update(type=p4r.Update.INSERT)
    assert p4rt.write(update).item == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§12")
def test_an_unknown_table_id_is_malformed(p4rt: Session) -> None:
    """An id the P4Info does not have makes the entity malformed (INVALID_ARGUMENT, §12);
    NOT_FOUND is for an entity that is not installed."""
    te = ent.flow_id()
    te.table_id = 0x0BADBEEF
    assert p4rt.write(ent.update(ent.INSERT, te)).item == "INVALID_ARGUMENT"


# -- §13 Read ----------------------------------------------------------------------------------
@pytest.mark.spec("§13")
def test_a_read_needs_no_stream_nor_election(p4rt: Session,
                                             switch: launcher.SwitchProcess) -> None:
    assert p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "OK"
    reader = rt.Client(switch.config.grpc_addr, DEVICE)
    outcome = reader.read([ent.entity(p4r.TableEntry(table_id=ent.flow_id().table_id))])
    reader.close()
    assert (outcome.code, len(outcome.entities)) == ("OK", 1)


@pytest.mark.spec("§13")
def test_a_read_of_an_unknown_device_is_not_found(p4rt: Session,
                                                  expect: Callable[..., str]) -> None:
    outcome = p4rt.read(ent.entity(p4r.TableEntry()), device_id=DEVICE + 1)
    assert outcome.code == expect("NOT_FOUND")


@pytest.mark.spec("§13")
def test_a_read_before_a_pipeline_is_a_failed_precondition(
        fresh_switch: launcher.SwitchProcess) -> None:
    client = rt.Client(fresh_switch.config.grpc_addr, DEVICE)
    outcome = client.read([ent.entity(p4r.TableEntry())])
    client.close()
    assert outcome.code == "FAILED_PRECONDITION"


@pytest.mark.spec("§13.2")
def test_an_entity_without_kind_is_refused(p4rt: Session, expect: Callable[..., str]) -> None:
    assert p4rt.read(p4r.Entity()).item == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§13.3")
def test_a_read_batch_reports_one_error_per_request(p4rt: Session,
                                                    expect: Callable[..., str]) -> None:
    assert p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "OK"
    good = ent.entity(p4r.TableEntry(table_id=ent.flow_id().table_id))
    bad = ent.entity(p4r.TableEntry(table_id=0x0BADBEEF))
    outcome = p4rt.read(good, bad, good)
    observed = f"{outcome.code}:{','.join(outcome.items)}:{len(outcome.entities)}"
    assert observed == expect("UNKNOWN:OK,INVALID_ARGUMENT,OK:2")
