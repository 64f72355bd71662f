"""§14 SetForwardingPipelineConfig and §15 GetForwardingPipelineConfig."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from finsy.proto import p4r

from bmv2 import launcher
from tests.p4runtime import client as rt
from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import DEVICE, Session

SET = p4r.SetForwardingPipelineConfigRequest
GET = p4r.GetForwardingPipelineConfigRequest


def entries(p4rt: Session) -> int:
    return len(p4rt.read(ent.entity(p4r.TableEntry())).entities)


def cookie(p4rt: Session) -> int | None:
    reply = p4rt.client.get_pipeline(GET.COOKIE_ONLY).reply
    assert isinstance(reply, p4r.GetForwardingPipelineConfigResponse)
    return reply.config.cookie.cookie if reply.config.HasField("cookie") else None


# -- §14 ---------------------------------------------------------------------------------------
@pytest.mark.spec("§14")
def test_verify_checks_without_changing_the_state(p4rt: Session) -> None:
    assert p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "OK"
    assert p4rt.client.set_pipeline(SET.VERIFY, rt.pipeline_config(cookie=9),
                                    p4rt.election_id).code == "OK"
    assert (entries(p4rt), cookie(p4rt)) == (1, 1)


@pytest.mark.spec("§14")
def test_verify_refuses_a_config_that_cannot_be_realized(fresh_p4rt: Session,
                                                         expect: Callable[..., str]) -> None:
    config = rt.pipeline_config()
    config.p4_device_config = b"{not a BMv2 JSON"
    outcome = fresh_p4rt.client.set_pipeline(SET.VERIFY, config, fresh_p4rt.election_id)
    assert outcome.code == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§14")
@pytest.mark.parametrize("action", ["VERIFY", "VERIFY_AND_SAVE", "VERIFY_AND_COMMIT"])
def test_a_config_is_needed(fresh_p4rt: Session, action: str,
                            expect: Callable[..., str]) -> None:
    p4rt = fresh_p4rt
    outcome = p4rt.client.set_pipeline(getattr(SET, action), None, p4rt.election_id)
    assert outcome.code == expect("INVALID_ARGUMENT", action)


@pytest.mark.spec("§14")
def test_verify_and_commit_clears_the_forwarding_state(p4rt: Session) -> None:
    assert p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "OK"
    assert p4rt.client.set_pipeline(SET.VERIFY_AND_COMMIT, rt.pipeline_config(cookie=2),
                                    p4rt.election_id).code == "OK"
    assert (entries(p4rt), cookie(p4rt)) == (0, 2)


@pytest.mark.spec("§14")
def test_verify_and_save_then_commit_realizes_the_saved_config(fresh_p4rt: Session) -> None:
    assert fresh_p4rt.client.set_pipeline(SET.VERIFY_AND_SAVE, rt.pipeline_config(cookie=3),
                                          fresh_p4rt.election_id).code == "OK"
    assert fresh_p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "OK"
    assert fresh_p4rt.client.set_pipeline(SET.COMMIT, None, fresh_p4rt.election_id).code == "OK"
    assert (entries(fresh_p4rt), cookie(fresh_p4rt)) == (1, 3), "writes since the save are replayed"


@pytest.mark.spec("§14")
def test_commit_without_a_saved_config_is_not_found(fresh_p4rt: Session,
                                                    expect: Callable[..., str]) -> None:
    outcome = fresh_p4rt.client.set_pipeline(SET.COMMIT, None, fresh_p4rt.election_id)
    assert outcome.code == expect("NOT_FOUND")


@pytest.mark.spec("§14")
def test_commit_with_a_config_is_refused(fresh_p4rt: Session, expect: Callable[..., str]) -> None:
    assert fresh_p4rt.client.set_pipeline(SET.VERIFY_AND_SAVE, rt.pipeline_config(),
                                          fresh_p4rt.election_id).code == "OK"
    outcome = fresh_p4rt.client.set_pipeline(SET.COMMIT, rt.pipeline_config(),
                                             fresh_p4rt.election_id)
    assert outcome.code == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§14")
def test_reconcile_and_commit_of_the_same_pipeline_keeps_the_state(
        fresh_p4rt: Session, expect: Callable[..., str]) -> None:
    p4rt = fresh_p4rt  # BMv2 refuses any later pipeline after a failed reconcile
    assert p4rt.write(ent.update(ent.INSERT, ent.flow_id())).code == "OK"
    outcome = p4rt.client.set_pipeline(SET.RECONCILE_AND_COMMIT, rt.pipeline_config(cookie=4),
                                       p4rt.election_id)
    observed = outcome.code if outcome.code != "OK" else (
        "kept" if (entries(p4rt), cookie(p4rt)) == (1, 4) else "lost")
    assert observed == expect("kept")


@pytest.mark.spec("§14")
def test_an_unspecified_action_is_refused(p4rt: Session, expect: Callable[..., str]) -> None:
    outcome = p4rt.client.set_pipeline(SET.UNSPECIFIED, rt.pipeline_config(), p4rt.election_id)
    assert outcome.code == expect("INVALID_ARGUMENT")


@pytest.mark.spec("§14")
def test_only_the_primary_sets_the_pipeline(p4rt: Session) -> None:
    outcome = p4rt.client.set_pipeline(SET.VERIFY_AND_COMMIT, rt.pipeline_config(),
                                       p4rt.election_id + 1)
    assert outcome.code == "PERMISSION_DENIED"


@pytest.mark.spec("§14")
def test_setting_the_pipeline_of_an_unknown_device_is_not_found(
        p4rt: Session, expect: Callable[..., str]) -> None:
    outcome = p4rt.client.set_pipeline(SET.VERIFY_AND_COMMIT, rt.pipeline_config(),
                                       p4rt.election_id, device_id=DEVICE + 1)
    assert outcome.code == expect("NOT_FOUND")


# -- §15 ---------------------------------------------------------------------------------------
@pytest.mark.spec("§15")
def test_the_response_type_selects_the_fields(p4rt: Session) -> None:
    def fields(kind: int) -> list[str]:
        reply = p4rt.client.get_pipeline(kind).reply
        assert isinstance(reply, p4r.GetForwardingPipelineConfigResponse)
        return sorted(f.name for f, _ in reply.config.ListFields())

    assert fields(GET.ALL) == ["cookie", "p4_device_config", "p4info"]
    assert fields(GET.COOKIE_ONLY) == ["cookie"]
    assert fields(GET.P4INFO_AND_COOKIE) == ["cookie", "p4info"]
    assert fields(GET.DEVICE_CONFIG_AND_COOKIE) == ["cookie", "p4_device_config"]


@pytest.mark.spec("§15")
def test_the_p4info_reads_back_as_set(p4rt: Session) -> None:
    reply = p4rt.client.get_pipeline(GET.P4INFO_AND_COOKIE).reply
    assert isinstance(reply, p4r.GetForwardingPipelineConfigResponse)
    assert reply.config.p4info == rt.p4info()


@pytest.mark.spec("§15")
def test_a_config_set_without_cookie_reads_without_cookie(p4rt: Session,
                                                          expect: Callable[..., str]) -> None:
    assert p4rt.client.set_pipeline(SET.VERIFY_AND_COMMIT, rt.pipeline_config(cookie=None),
                                    p4rt.election_id).code == "OK"
    observed = "unset" if cookie(p4rt) is None else f"cookie {cookie(p4rt)}"
    assert observed == expect("unset")


@pytest.mark.spec("§15")
def test_without_a_pipeline_the_config_is_unset(fresh_switch: launcher.SwitchProcess,
                                                expect: Callable[..., str]) -> None:
    client = rt.Client(fresh_switch.config.grpc_addr, DEVICE)
    outcome = client.get_pipeline(GET.ALL)
    client.close()
    observed = outcome.code
    if outcome.code == "OK":
        assert isinstance(outcome.reply, p4r.GetForwardingPipelineConfigResponse)
        observed = "set" if outcome.reply.HasField("config") else "unset"
    assert observed == expect("unset")


@pytest.mark.spec("§15")
def test_getting_the_pipeline_of_an_unknown_device_is_not_found(
        p4rt: Session, expect: Callable[..., str]) -> None:
    assert p4rt.client.get_pipeline(GET.ALL, device_id=DEVICE + 1).code == expect("NOT_FOUND")
