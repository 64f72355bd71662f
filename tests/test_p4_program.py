"""The committed p4c outputs match the P4 sources, and the constants software mirrors
from p4src/include/defines.p4 agree with it."""

from __future__ import annotations

import json
import re

from bmv2 import p4build
from hostagent import shim
from p4src import pipeline

DEFINES = (p4build.REPO / "p4src" / "include" / "defines.p4").read_text()


def define(name: str) -> int:
    match = re.search(rf"const\s+\S+\s+{name}\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*;", DEFINES)
    assert match, f"{name} not found in defines.p4"
    return int(match.group(1), 0)


def test_build_outputs_are_from_the_current_sources() -> None:
    recorded = p4build.recorded_hash()
    assert recorded is not None, "p4src/build/SOURCE_HASH missing: run `make p4`"
    assert recorded == p4build.source_hash(), (
        "p4src/ changed since p4src/build/ was compiled: run `make p4` and commit the outputs")
    for path in p4build.output_paths(pipeline.PROGRAM):
        assert (p4build.REPO / path).exists(), f"{path} missing: run `make p4`"


def test_build_outputs_name_no_absolute_paths() -> None:
    bmv2_json = json.loads(pipeline.BMV2_JSON.read_text())
    sources = {m.get("filename") for m in bmv2_json.get("meta", {}).values()
               if isinstance(m, dict)}
    text = pipeline.BMV2_JSON.read_text()
    assert "/work/" not in text and "/tmp/" not in text, sources


def test_shim_constants_agree() -> None:
    assert define("MP_FASTPATH_PORT") == pipeline.FASTPATH_PORT == shim.FASTPATH_PORT
    assert define("MP_SHIM_VERSION") == pipeline.SHIM_VERSION == shim.SHIM_VERSION
    assert define("MP_SHIM_BYTES") == pipeline.SHIM_BYTES == shim.SHIM_SIZE


def test_forwarded_mode_and_aifo_constants_agree() -> None:
    from hostagent.masque.quic_proxy_wire import VCID_LENGTH
    from schedmodels.aifo import WINDOW

    assert define("VCID_BYTES") == pipeline.VCID_BYTES == VCID_LENGTH
    assert define("QUIC_SHORT_MIN_UDP_LEN") == pipeline.QUIC_SHORT_MIN_UDP_LEN
    assert define("RANK_WINDOW") == pipeline.RANK_WINDOW == WINDOW
    match = re.search(r"typedef\s+bit<(\d+)>\s+quic_cid_t;", DEFINES)
    assert match and int(match.group(1)) == 8 * pipeline.VCID_BYTES


def test_rank_width_agrees() -> None:
    match = re.search(r"typedef\s+bit<(\d+)>\s+rank_t;", DEFINES)
    assert match, "rank_t not found in defines.p4"
    assert int(match.group(1)) == pipeline.RANK_BITS
    assert pipeline.RANK_MAX == (1 << pipeline.RANK_BITS) - 1


def test_pipeline_constants_agree() -> None:
    assert define("CPU_PORT") == pipeline.CPU_PORT
    assert define("DROP_PORT") == pipeline.DROP_PORT
    assert define("NUM_QUEUES") == pipeline.NUM_QUEUES
    assert define("NUM_DROP_REASONS") == len(pipeline.DropReason)
    for reason in pipeline.DropReason:
        assert define(f"DROP_{reason.name}") == reason.value
    for counter in pipeline.MissCounter:
        assert define(f"MISS_{counter.name}") == counter.value
    for mode in pipeline.SchedMode:
        assert define(f"SCHED_{mode.name}") == mode.value
