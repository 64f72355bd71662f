"""§5 Client arbitration, §16.2 Client Arbitration Update: who is primary, what every
client is told, and which arbitration errors end the stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from finsy.proto import p4r

from bmv2 import launcher
from tests.p4runtime import client as rt
from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import DEVICE, Session, become_primary


def notice(update: p4r.MasterArbitrationUpdate | rt.Ended | rt.Silence, **names: int) -> str:
    """'STATUS@NAME' where NAME is the keyword naming the notice's election id (its
    number if none does, '-' if it is unset), 'ended:CODE' or 'no notice'."""
    if isinstance(update, rt.Ended | rt.Silence):
        return rt.status_of(update)
    election = rt.election_of(update)
    label = next((k for k, v in names.items() if v == election), election)
    return f"{rt.status_of(update)}@{'-' if election is None else label}"


@pytest.fixture
def client(switch: launcher.SwitchProcess) -> Iterator[rt.Client]:
    c = rt.Client(switch.config.grpc_addr, DEVICE)
    yield c
    c.close()


@pytest.mark.spec("§5.3")
def test_unknown_device_ends_the_stream(client: rt.Client, next_election: Callable[[], int],
                                        expect: Callable[..., str]) -> None:
    stream = client.stream()
    stream.arbitrate(next_election(), DEVICE + 1)
    assert rt.status_of(stream.arbitration()) == expect("ended:NOT_FOUND")
    stream.close()


@pytest.mark.spec("§5.3")
def test_an_election_id_in_use_ends_the_stream(p4rt: Session, client: rt.Client,
                                              expect: Callable[..., str]) -> None:
    stream = client.stream()
    stream.arbitrate(p4rt.election_id, DEVICE)
    assert rt.status_of(stream.arbitration()) == expect("ended:INVALID_ARGUMENT")
    stream.close()
    outcome = p4rt.write(ent.update(ent.INSERT, ent.flow_id()))
    assert outcome.code == "OK", "the primary is still primary"


@pytest.mark.spec("§5.3")
def test_a_role_config_without_an_agreed_scheme_ends_the_stream(
        client: rt.Client, next_election: Callable[[], int],
        expect: Callable[..., str]) -> None:
    stream = client.stream()
    stream.arbitrate(next_election(), DEVICE, role="ops", role_config=True)
    assert rt.status_of(stream.arbitration()) == expect("ended:INVALID_ARGUMENT")
    stream.close()


@pytest.mark.spec("§5.3")
def test_another_device_on_the_same_stream_ends_it(client: rt.Client,
                                                   next_election: Callable[[], int],
                                                   expect: Callable[..., str]) -> None:
    stream = become_primary(client, next_election())
    stream.arbitrate(next_election(), DEVICE + 1)
    assert rt.status_of(stream.arbitration()) == expect("ended:FAILED_PRECONDITION")
    stream.close()


@pytest.mark.spec("§5.4")
def test_a_higher_election_id_takes_over_and_everyone_is_told(
        p4rt: Session, client: rt.Client, next_election: Callable[[], int]) -> None:
    higher = next_election()
    stream = client.stream()
    stream.arbitrate(higher, DEVICE)
    assert notice(stream.arbitration(), new=higher) == "OK@new"
    assert notice(p4rt.stream.arbitration(), new=higher) == "ALREADY_EXISTS@new"
    assert p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "PERMISSION_DENIED"
    assert client.write([ent.update(ent.INSERT, ent.flow_id())], higher).code == "OK"
    stream.close()


@pytest.mark.spec("§5.3")
def test_a_lower_election_id_is_a_backup(p4rt: Session, client: rt.Client) -> None:
    stream = client.stream()
    stream.arbitrate(p4rt.election_id - 1, DEVICE)
    assert notice(stream.arbitration(), primary=p4rt.election_id) == "ALREADY_EXISTS@primary"
    outcome = client.write([ent.update(ent.INSERT, ent.flow_id())], p4rt.election_id - 1)
    assert outcome.code == "PERMISSION_DENIED"
    stream.close()


@pytest.mark.spec("§5")
def test_when_the_primary_leaves_there_is_no_primary_until_one_is_elected(
        client: rt.Client, next_election: Callable[[], int],
        expect: Callable[..., str]) -> None:
    """§5: "the P4Runtime server will be without a primary controller, until a client
    sends a successful MasterArbitrationUpdate"; backups hear NOT_FOUND (§5.4)."""
    low, high = next_election(), next_election()
    backup = client.stream()
    backup.arbitrate(low, DEVICE)
    assert rt.status_of(backup.arbitration()) in ("OK", "NOT_FOUND")  # no primary yet
    primary = become_primary(client, high)
    assert notice(backup.arbitration(), high=high) == "ALREADY_EXISTS@high"
    primary.close()
    assert notice(backup.arbitration(), low=low, high=high) == expect("NOT_FOUND@high",
                                                                      "notice")
    ok = client.write([ent.update(ent.INSERT, ent.flow_id())], low).code
    assert ok == expect("PERMISSION_DENIED", "write")
    # the same (lower) id again does not make it primary; one >= the highest seen does
    backup.arbitrate(low, DEVICE)
    assert notice(backup.arbitration(), low=low, high=high) == expect("NOT_FOUND@high",
                                                                      "again")
    backup.arbitrate(high, DEVICE)
    assert notice(backup.arbitration(), high=high) == "OK@high"
    backup.close()


@pytest.mark.spec("§5.3")
def test_a_primary_that_lowers_its_election_id_becomes_a_backup(
        p4rt: Session, expect: Callable[..., str]) -> None:
    p4rt.stream.arbitrate(p4rt.election_id - 1, DEVICE)
    update = p4rt.stream.arbitration()
    assert notice(update, before=p4rt.election_id, lowered=p4rt.election_id - 1) == expect(
        "NOT_FOUND@before")


@pytest.mark.spec("§16.2.1")
def test_an_unset_election_id_is_never_primary(fresh_switch: launcher.SwitchProcess,
                                               expect: Callable[..., str]) -> None:
    """On a switch that never had a primary: a client without an election id is a
    backup, and its notice has no election id since there never was a primary (§5.4)."""
    c = rt.Client(fresh_switch.config.grpc_addr, DEVICE)
    stream = c.stream()
    stream.arbitrate(None, DEVICE)
    assert notice(stream.arbitration()) == expect("NOT_FOUND@-")
    stream.close()
    c.close()


@pytest.mark.spec("§16.2.1")
def test_election_id_zero_is_an_id(fresh_switch: launcher.SwitchProcess) -> None:
    """{high: 0, low: 0} is a set election id, unlike an unset one (§8.1.2)."""
    c = rt.Client(fresh_switch.config.grpc_addr, DEVICE)
    stream = c.stream()
    stream.arbitrate(0, DEVICE)
    assert notice(stream.arbitration()) == "OK@0"
    stream.close()
    c.close()
