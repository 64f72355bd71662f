"""Fixtures of the dataplane suite: the selected target on veth ports, and a P4Runtime
session that pushes the committed pipeline before each test (which also resets every
table, counter and register)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from bmv2 import launcher, toolchain
from controller.p4runtime import BlockingP4Runtime
from netlab import capabilities
from p4src import pipeline
from tests.dataplane.ptf import VethPorts
from tests.targets import targets_to_test

NUM_PORTS = 4



def _skip_reason(target: str) -> str | None:
    if not capabilities.netns().available:
        return capabilities.netns().detail
    if not pipeline.BMV2_JSON.exists():
        return f"{pipeline.BMV2_JSON} missing: run `make p4` with p4c installed"
    if target == "bmv2" and toolchain.find("simple_switch_grpc") is None:
        return "MP_TARGET=bmv2 but simple_switch_grpc is not installed"
    if target == "soft" and importlib.util.find_spec("bmv2.softswitch.engine") is None:
        return ("no target: BMv2's simple_switch_grpc is not installed and the built-in "
                "software target's engine is not there yet (issue 4)")
    return None


@pytest.fixture(scope="session", params=targets_to_test())
def target(request: pytest.FixtureRequest) -> str:
    chosen = request.param
    reason = _skip_reason(chosen)
    if reason:
        pytest.skip(reason)
    return chosen


@pytest.fixture(scope="session")
def ports(target: str) -> Iterator[VethPorts]:
    # unique per run and target: two runs, or two targets, never share interfaces
    veths = VethPorts(NUM_PORTS, prefix=f"mp{os.getpid() % 100000}{target[0]}")
    veths.create()
    try:
        yield veths
    finally:
        veths.destroy()


@pytest.fixture(scope="session")
def switch(target: str, ports: VethPorts, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[launcher.SwitchProcess]:
    config = launcher.SwitchConfig(
        ports={p: ports.switch_if(p) for p in ports.ports},
        grpc_addr=launcher.free_grpc_addr(),
        log_file=tmp_path_factory.mktemp("switch") / "switch.log")
    with launcher.SwitchProcess(target, config) as proc:
        yield proc


@pytest.fixture(scope="session")
def p4rt_session(switch: launcher.SwitchProcess) -> Iterator[BlockingP4Runtime]:
    with BlockingP4Runtime(switch.config.grpc_addr) as p4rt:
        yield p4rt


@pytest.fixture
def p4rt(p4rt_session: BlockingP4Runtime, ports: VethPorts) -> BlockingP4Runtime:
    """A freshly pushed pipeline (empty tables, zero counters and registers)."""
    p4rt_session.set_pipeline()
    ports.drain()
    return p4rt_session
