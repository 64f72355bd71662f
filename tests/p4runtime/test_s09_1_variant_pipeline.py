"""§9.1.2 and §9.1.3 on what the committed program does not have: a @tableonly action
and a constant default action. The cases push a variant of the committed pipeline,
edited the way p4c would emit those annotations (P4Info action scope and
const_default_action_id; BMv2 JSON default_entry.action_const)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from finsy.proto import p4i, p4r

from p4src.pipeline import BMV2_JSON
from tests.p4runtime import client as rt
from tests.p4runtime import entities as ent
from tests.p4runtime.conftest import Session

CONST_DEFAULT_TABLE = "rank_to_queue"
TABLE_ONLY = ("ipv4_lpm", "no_route")


def variant_config() -> p4r.ForwardingPipelineConfig:
    info = rt.p4info()
    for table in info.tables:
        if table.preamble.alias == TABLE_ONLY[0]:
            for ref in table.action_refs:
                if ref.id == ent.action(TABLE_ONLY[1]).preamble.id:
                    ref.scope = p4i.ActionRef.TABLE_ONLY
                    ref.annotations.append("@tableonly")
        if table.preamble.alias == CONST_DEFAULT_TABLE:
            table.const_default_action_id = ent.action("set_queue").preamble.id
    program = json.loads(BMV2_JSON.read_text())
    for pipe in program["pipelines"]:
        for table in pipe["tables"]:
            if table["name"].endswith(f".{CONST_DEFAULT_TABLE}"):
                table["default_entry"]["action_const"] = True
    config = p4r.ForwardingPipelineConfig(p4info=info,
                                          p4_device_config=json.dumps(program).encode())
    config.cookie.cookie = 77
    return config


@pytest.fixture
def variant(p4rt: Session) -> Iterator[Session]:
    outcome = p4rt.client.set_pipeline(p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
                                       variant_config(), p4rt.election_id)
    assert outcome.code == "OK", outcome
    yield p4rt


@pytest.mark.spec("§9.1.2")
def test_a_tableonly_action_is_refused_as_the_default(variant: Session) -> None:
    te = ent.default_of(TABLE_ONLY[0], ent.call(TABLE_ONLY[1]))
    assert variant.write(ent.update(ent.MODIFY, te)).item == "PERMISSION_DENIED"


@pytest.mark.spec("§9.1.2")
def test_a_tableonly_action_is_fine_in_an_entry(variant: Session) -> None:
    te = ent.entry("ipv4_lpm", ent.lpm("ipv4_lpm", "dst_addr", 0x0A000000, 8),
                   action=ent.call(TABLE_ONLY[1]))
    assert variant.write(ent.update(ent.INSERT, te)).item == "OK"


@pytest.mark.spec("§9.1.3")
def test_a_constant_default_action_cannot_be_modified(variant: Session) -> None:
    te = ent.default_of(CONST_DEFAULT_TABLE, ent.call("set_queue", queue=7))
    assert variant.write(ent.update(ent.MODIFY, te)).item == "PERMISSION_DENIED"
    reset = ent.default_of(CONST_DEFAULT_TABLE)
    assert variant.write(ent.update(ent.MODIFY, reset)).item == "PERMISSION_DENIED"
