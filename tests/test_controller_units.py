"""Controller pieces without a switch: config validation, intended state, rank policy,
and the generated northbound modules being up to date."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from controller import config as config_mod
from controller import entities, protogen
from controller.config import ConfigError
from controller.intent import IntentError, IntentStore, QuicMappingIntent, StreamIntent
from controller.service import ControllerService, RankRequest

MINIMAL = """
[[switch]]
name = "s1"
address = "127.0.0.1:9559"
[fastpath]
address = "10.0.2.1"
proxy_addr = "10.0.2.10"
[[class]]
name = "silver"
min_rank = 2048
rank = 4096
[[client]]
name = "alice"
token = "t-alice"
address = "10.0.1.10"
class = "silver"
"""


def parse(text: str) -> config_mod.ControllerConfig:
    return config_mod.parse(tomllib.loads(text))


def test_minimal_config_and_defaults() -> None:
    cfg = parse(MINIMAL)
    assert cfg.sched_mode == "fifo" and cfg.fastpath.miss == "slow-path"
    assert cfg.session_grace_s == 5.0 and parse("session_grace_s = 0.5\n" + MINIMAL) \
        .session_grace_s == 0.5
    assert cfg.client_by_token("t-alice").name == "alice"
    assert cfg.client_by_token("nope") is None


@pytest.mark.parametrize("change,message", [
    ('sched_mode = "wfq"\n', "sched_mode: 'wfq' is not one of fifo, strict, sppifo, aifo, packs"),
    ('burst_pct = 100\n', "burst_pct: 100 is not a percentage in 0..99"),
    ('queue_depth = 0\n', "queue_depth: 0 packets is outside 1..4096"),
    ('bogus = 1\n', "unknown top-level key(s): bogus"),
    ('default_rank = 70000\n', "default_rank: rank 70000 outside 0..65535"),
    ('session_grace_s = -1\n', "session_grace_s: -1 is not between 0 and 3600 seconds"),
    ('session_grace_s = "5"\n', "session_grace_s: '5' is not between 0 and 3600 seconds"),
])
def test_config_errors_name_the_key(change: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(change + MINIMAL)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="fastpath.address: '10.0.2' is not an IPv4"):
        parse(MINIMAL.replace('address = "10.0.2.1"', 'address = "10.0.2"'))
    with pytest.raises(ConfigError, match="unknown class 'gold'"):
        parse(MINIMAL.replace('class = "silver"', 'class = "gold"'))
    with pytest.raises(ConfigError, match="no such file"):
        config_mod.load(Path("/nonexistent/controller.toml"))


def test_intent_store_is_idempotent_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = IntentStore(path, (40000, 40001))
    a = store.open_flow("alice", "10.0.1.10", 5000, "10.0.3.10", 443)
    assert store.open_flow("alice", "10.0.1.10", 5000, "10.0.3.10", 443) == a
    b = store.open_flow("alice", "10.0.1.10", 5001, "10.0.3.10", 443)
    assert (a.flow_id, a.proxy_port, b.proxy_port) == (1, 40000, 40001)
    with pytest.raises(IntentError, match="all proxy ports 40000-40001 are allocated"):
        store.open_flow("alice", "10.0.1.10", 5002, "10.0.3.10", 443)
    with pytest.raises(IntentError, match="another client"):
        store.open_flow("bob", "10.0.1.10", 5000, "10.0.3.10", 443)
    store.put_stream(StreamIntent("alice", "10.0.1.10", "10.0.3.10", 0, 443, -1, 4096))
    store.set_setting("sched_mode", "sppifo")
    store.close()
    again = IntentStore(path, (40000, 40001))
    assert [f.flow_id for f in again.flows()] == [1, 2]
    assert again.streams()[0].rank == 4096 and again.setting("sched_mode", "fifo") == "sppifo"
    assert again.close_flow(1) == a and again.close_flow(1) is None


def test_rank_policy_caps_and_maps() -> None:
    cfg = parse(MINIMAL)
    service = ControllerService(cfg, IntentStore(":memory:", (40000, 40009)))
    alice = cfg.client_by_token("t-alice")
    assert service.rank_for(alice, RankRequest(priority=0)) == (2048, True)
    assert service.rank_for(alice, RankRequest(priority=3)) == (3072, False)
    assert service.rank_for(alice, RankRequest(deadline_ms=70000)) == (65535, False)
    assert service.rank_for(alice, RankRequest(traffic_class="silver")) == (4096, False)
    with pytest.raises(IntentError, match="unknown traffic class 'gold'"):
        service.rank_for(alice, RankRequest(traffic_class="gold"))
    with pytest.raises(IntentError, match="exactly one"):
        service.rank_for(alice, RankRequest())


PROXY = MINIMAL + """
[[client]]
name = "proxy"
token = "t-proxy"
address = "10.0.2.10"
class = "silver"
proxy = true
"""


def _mapping(src_port: int = 5000, dcid: bytes = b"\x01" * 8, **kw: object) -> QuicMappingIntent:
    fields: dict[str, object] = dict(
        client="", direction="to_target", src_addr="10.0.1.10", src_port=src_port,
        dst_addr="10.0.2.10", dst_port=4433, dcid=dcid, out_src_addr="10.0.2.10",
        out_src_port=40001, out_dst_addr="10.0.3.10", out_dst_port=4433,
        new_dcid=b"\x02" * 8, rank=100, tunnel="stream 0")
    fields.update(kw)
    return QuicMappingIntent(**fields)  # type: ignore[arg-type]


def _recording(service: ControllerService) -> list[list[object]]:
    pushed: list[list[object]] = []

    async def push(updates: list[object]) -> None:
        pushed.append(updates)

    service._push = push  # type: ignore[method-assign]
    return pushed


def test_sched_mode_parameters_are_checked_kept_and_written() -> None:
    import asyncio

    cfg = parse('sched_mode = "packs"\nburst_pct = 20\nqueue_depth = 32\n' + PROXY)
    service = ControllerService(cfg, IntentStore(":memory:", (40000, 40009)))
    pushed = _recording(service)
    ops = cfg.client_by_token("t-proxy")
    ops = dataclasses.replace(ops, operator=True)
    _, defaults = service.desired()
    mode = next(e for e in defaults if e.table_id == "sched_mode")
    assert dict(mode.action.args) == {"mode": 4, "burst_pct": 20, "queue_depth": 32}
    asyncio.run(service.set_sched_mode(ops, "aifo", burst_pct=5))
    assert (service.sched_mode, service.burst_pct, service.queue_depth) == ("aifo", 5, 32)
    assert dict(pushed[-1][0].action.args) == {"mode": 3, "burst_pct": 5,
                                                       "queue_depth": 32}
    with pytest.raises(IntentError, match="queue_depth: 5000 packets"):
        asyncio.run(service.set_sched_mode(ops, "packs", queue_depth=5000))
    assert service.sched_mode == "aifo"  # a refused change changes nothing


def test_quic_mappings_policy_and_shared_dcid_entries() -> None:
    import asyncio

    cfg = parse("max_quic_mappings = 2\n" + PROXY)
    service = ControllerService(cfg, IntentStore(":memory:", (40000, 40009)))
    pushed = _recording(service)
    proxy, alice = cfg.client_by_token("t-proxy"), cfg.client_by_token("t-alice")
    with pytest.raises(IntentError, match="alice is not a proxy"):
        asyncio.run(service.install_quic_mapping(alice, _mapping()))
    with pytest.raises(IntentError, match="8-byte connection IDs only"):
        asyncio.run(service.install_quic_mapping(proxy, _mapping(new_dcid=b"\x02" * 4)))
    with pytest.raises(IntentError, match="not to_target or to_client"):
        asyncio.run(service.install_quic_mapping(proxy, _mapping(direction="sideways")))
    first = asyncio.run(service.install_quic_mapping(proxy, _mapping(5000)))
    assert first.client == "proxy"
    assert [e.table_id for e in pushed[-1]] == ["quic_forward", "quic_dcids"]
    # the same DCID from a second source (say, after a NAT rebinding): one quic_dcids entry
    asyncio.run(service.install_quic_mapping(proxy, _mapping(5001)))
    assert [e.table_id for e in pushed[-1]] == ["quic_forward"]
    with pytest.raises(IntentError, match="10.0.1.10 has 2 QUIC mappings"):
        asyncio.run(service.install_quic_mapping(proxy, _mapping(5002, dcid=b"\x03" * 8)))
    asyncio.run(service.remove_quic_mapping(proxy, first.key))
    assert [e.table_id for e in pushed[-1]] == ["quic_forward"]  # the DCID stays
    asyncio.run(service.remove_quic_mapping(proxy, _mapping(5001).key))
    assert [e.table_id for e in pushed[-1]] == ["quic_forward", "quic_dcids"]
    asyncio.run(service.remove_quic_mapping(proxy, _mapping(5001).key))  # idempotent
    inserts, _ = service.desired()
    assert not [e for e in inserts if e.table_id.startswith("quic")]
    entry = entities.quic_forward_entry(_mapping())
    assert dict(entry.match)["dcid"] == int.from_bytes(b"\x01" * 8, "big")


def test_generated_northbound_modules_are_current(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    for fresh in protogen.generate(tmp_path):
        committed = protogen.REPO / fresh.relative_to(tmp_path)
        assert committed.read_text() == fresh.read_text(), (
            f"{committed} is stale: run `make proto` and commit it")
