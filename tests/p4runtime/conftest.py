"""Fixtures of the P4Runtime conformance suite: every target this machine has (the
built-in one always, BMv2 where installed), started without ports, and a primary
client with a freshly pushed pipeline for each case.

Every case carries `@pytest.mark.spec("§N.N")`, the section of the P4Runtime
specification (v1.4.1 numbering, the same in v1.5) it checks; collection fails
for a case without one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from finsy.proto import p4r

from bmv2 import launcher
from p4src import pipeline
from tests.p4runtime import client as rt
from tests.p4runtime.expected import expected
from tests.targets import targets_to_test

DEVICE = 1  # not 0: a device id is an object id, and unset (0) is not one (§8.1.1)
ELECTION_START = 1000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here) and item.get_closest_marker("spec") is None:
            raise pytest.UsageError(f"{item.nodeid}: a conformance case must cite the "
                                    "section it checks: @pytest.mark.spec('§N.N')")


@pytest.fixture(scope="session", params=targets_to_test())
def target(request: pytest.FixtureRequest) -> str:
    if not pipeline.BMV2_JSON.exists():
        pytest.skip(f"{pipeline.BMV2_JSON} missing: run `make p4` with p4c installed")
    return str(request.param)


def start_switch(target: str, tmp: pytest.TempPathFactory) -> launcher.SwitchProcess:
    config = launcher.SwitchConfig(ports={}, grpc_addr=launcher.free_grpc_addr(),
                                   device_id=DEVICE,
                                   log_file=tmp.mktemp("switch") / "switch.log")
    proc = launcher.SwitchProcess(target, config)
    proc.start()
    return proc


@pytest.fixture(scope="session")
def switch(target: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[launcher.SwitchProcess]:
    """One switch per target for the session (its election ids only ever grow)."""
    proc = start_switch(target, tmp_path_factory)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def fresh_switch(target: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[launcher.SwitchProcess]:
    """A switch of its own, for cases that need one no client was ever primary on."""
    proc = start_switch(target, tmp_path_factory)
    try:
        yield proc
    finally:
        proc.stop()


_elections = itertools.count(ELECTION_START)


@pytest.fixture
def next_election() -> Callable[[], int]:
    """Election ids above every one used before in this session (the server keeps the
    highest it has seen, so a new primary needs a higher one)."""
    return lambda: next(_elections)


@dataclass
class Session:
    """A primary client: its stream, election id and unary client."""

    client: rt.Client
    stream: rt.Stream
    election_id: int

    def write(self, *updates: p4r.Update, **kwargs: object) -> rt.Outcome:
        return self.client.write(list(updates), self.election_id, **kwargs)  # type: ignore[arg-type]

    def read(self, *entities: p4r.Entity, **kwargs: object) -> rt.Outcome:
        return self.client.read(list(entities), **kwargs)  # type: ignore[arg-type]


def become_primary(client: rt.Client, election_id: int) -> rt.Stream:
    stream = client.stream()
    stream.arbitrate(election_id, DEVICE)
    update = stream.arbitration()
    assert rt.status_of(update) == "OK", f"not primary: {update}"
    return stream


def primary_session(switch: launcher.SwitchProcess, election_id: int) -> Session:
    client = rt.Client(switch.config.grpc_addr, DEVICE)
    stream = become_primary(client, election_id)
    outcome = client.set_pipeline(p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
                                  rt.pipeline_config(), election_id)
    assert outcome.code == "OK", outcome
    return Session(client, stream, election_id)


@pytest.fixture
def p4rt(switch: launcher.SwitchProcess, next_election: Callable[[], int]
         ) -> Iterator[Session]:
    """The primary client of the session's switch, with the pipeline just pushed
    (VERIFY_AND_COMMIT: empty tables, zero counters and registers)."""
    session = primary_session(switch, next_election())
    try:
        yield session
    finally:
        session.stream.close()
        session.client.close()


@pytest.fixture
def fresh_p4rt(fresh_switch: launcher.SwitchProcess) -> Iterator[Session]:
    """The same on a switch of its own: for cases that may leave a saved, uncommitted
    pipeline behind (BMv2 then refuses every VERIFY_AND_COMMIT until a COMMIT)."""
    session = primary_session(fresh_switch, ELECTION_START)
    try:
        yield session
    finally:
        session.stream.close()
        session.client.close()


@pytest.fixture
def expect(request: pytest.FixtureRequest, target: str) -> Callable[..., str]:
    """expect(spec_outcome, part="") -> the outcome to assert on this target: the spec's,
    unless tests/p4runtime/expected.py records a departure for this case."""
    def outcome(spec: str, part: str = "") -> str:
        case = request.node.originalname + (f":{part}" if part else "")
        return expected(case, target, spec)
    return outcome
