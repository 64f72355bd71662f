"""Proxy sessions: what a proxy installs in a session is removed when the session ends
(the proxy is killed, or closes without removing it, and does not come back within the
grace period), and only then; a proxy that reconnects in time resumes its session; a
restarting controller removes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from bmv2 import launcher
from controller import config as config_mod
from controller.intent import IntentError, IntentStore, QuicMappingIntent
from controller.northbound import serve
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from controller.service import ControllerService, RankRequest
from tests.controller.session_proxy import MAPPING
from tests.test_controller_units import PROXY

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)

CONFIG = PROXY + """
[[client]]
name = "proxy2"
token = "t-proxy2"
address = "10.0.2.11"
class = "silver"
proxy = true
[[client]]
name = "ops"
token = "t-ops"
address = "127.0.0.1"
class = "silver"
operator = true
"""


def service(grace: float = 0.2) -> ControllerService:
    """A controller service without a switch (it records what it would write), its
    northbound address a free loopback port (`serving` serves it there)."""
    northbound = f"127.0.0.1:{launcher.free_tcp_port()}"
    cfg = config_mod.parse(tomllib.loads(f'northbound = "{northbound}"\n'
                                         f'session_grace_s = {grace}\n' + CONFIG))
    svc = ControllerService(cfg, IntentStore(":memory:", (40000, 40009)))
    pushed: list[object] = []

    async def push(updates: list[object]) -> None:  # no switch: record what would go
        pushed.extend(updates)

    svc._push = push  # type: ignore[method-assign]
    return svc


@contextlib.asynccontextmanager
async def serving(svc: ControllerService) -> AsyncIterator[nb_grpc.ControllerStub]:
    """`svc`'s northbound API served on its address, and a client stub of it."""
    server = await serve(svc, svc.config.northbound)
    try:
        async with grpc.aio.insecure_channel(svc.config.northbound) as channel:
            yield nb_grpc.ControllerStub(channel)
    finally:
        await server.stop(grace=0)


def mapping(src_port: int) -> QuicMappingIntent:
    return QuicMappingIntent(
        client="", direction="to_target", src_addr="10.0.1.10", src_port=src_port,
        dst_addr="10.0.2.10", dst_port=4433, dcid=b"\x01" * 8, out_src_addr="10.0.2.10",
        out_src_port=40001, out_dst_addr="10.0.3.10", out_dst_port=4433,
        new_dcid=b"\x02" * 8, rank=100, tunnel="stream 0")


def test_an_ended_session_removes_what_it_still_holds_and_nothing_else() -> None:
    async def main() -> None:
        svc = service()
        proxy = svc.config.client_by_token("t-proxy")
        assert proxy is not None
        session = svc.sessions.open(proxy)
        kept = await svc.install_quic_mapping(proxy, mapping(5000))  # no session named
        for port in (5001, 5002):
            await svc.install_quic_mapping(proxy, mapping(port), session)
        await svc.remove_quic_mapping(proxy, mapping(5002).key)  # removed by the proxy
        flow = await svc.open_flow(proxy, "10.0.2.10", 50000, "10.0.3.10", 443, session)
        await svc.register_stream(proxy, "10.0.2.10", "10.0.2.1", 50000, 9999, -1,
                                  RankRequest(priority=3), session)
        assert (session.count("quic_mapping"), session.count("flow"),
                session.count("stream")) == (1, 1, 1)
        removed = await svc.end_session(session.session_id)
        assert removed == {"stream": 1, "quic_mapping": 1, "flow": 1}
        assert [m.key for m in svc.store.quic_mappings()] == [kept.key]
        assert svc.store.flow(flow.flow_id) is None and svc.store.streams() == []
        assert svc.sessions.sessions == {}
        assert await svc.end_session(session.session_id) == {}  # once

    asyncio.run(main())


def test_a_session_is_its_owners_and_must_be_open() -> None:
    svc = service()
    proxy, other = svc.config.client_by_token("t-proxy"), svc.config.client_by_token("t-proxy2")
    assert proxy is not None and other is not None
    session = svc.sessions.open(proxy)
    assert svc.sessions.get(session.session_id, proxy) is session
    assert svc.sessions.get("", proxy) is None  # a call outside any session
    with pytest.raises(IntentError, match="is not open for proxy2"):
        svc.sessions.get(session.session_id, other)
    with pytest.raises(IntentError, match="controller restarted, or the session ended"):
        svc.sessions.get("0123456789abcdef", proxy)


def test_sessions_ending_because_the_controller_stops_keep_what_they_made() -> None:
    async def main() -> None:
        svc = service()
        proxy = svc.config.client_by_token("t-proxy")
        assert proxy is not None
        session = svc.sessions.open(proxy)
        await svc.install_quic_mapping(proxy, mapping(5000), session)
        svc.shutting_down = True
        assert await svc.end_session(session.session_id) == {}
        assert len(svc.store.quic_mappings()) == 1  # the restarted controller has it

    asyncio.run(main())


async def wait_until(predicate: object, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def mp_ctl(address: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.ctl", "--controller", address, "--token", "t-ops",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize("how", ["killed", "closed"])
def test_a_proxy_that_goes_away_leaves_no_mapping_behind(how: str) -> None:
    """mp-proxy's own session code in a child process: SIGKILLed after it installed a
    mapping (a crash: the controller notices the stream's connection closing), or closed
    without removing the mapping (its session ends with it)."""
    async def main() -> None:
        svc = service()
        address = svc.config.northbound
        server = await serve(svc, address)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.controller.session_proxy", address,
            "wait" if how == "killed" else "close", stdout=asyncio.subprocess.PIPE,
            cwd=REPO)
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line.startswith("installed in "), line
            session_id = line.split()[-1]
            if how == "killed":
                listed = json.loads(await mp_ctl(address, "--json", "sessions"))
                assert [(s["session_id"], s["client"], s["quic_mappings"])
                        for s in listed["sessions"]] == [(session_id, "proxy", 1)]
                assert len(svc.store.quic_mappings()) == 1
                proc.kill()
            await wait_until(lambda: not svc.store.quic_mappings(),
                             "the controller to remove the mapping")
            await wait_until(lambda: not svc.sessions.sessions, "the session to close")
            assert "session" in await mp_ctl(address, "sessions")  # the header, no rows
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            await server.stop(grace=0)

    asyncio.run(main())


def test_a_call_naming_an_unknown_session_is_refused() -> None:

    async def main() -> None:
        svc = service()
        async with serving(svc) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.InstallQuicMapping(MAPPING, metadata=(
                    ("authorization", "Bearer t-proxy"), ("mp-session", "feedbeef")))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "session 'feedbeef' is not open for proxy" in err.value.details()
            assert svc.store.quic_mappings() == []
            await stub.ListSessions(nb.Empty(), metadata=(
                ("authorization", "Bearer t-proxy"),))

    asyncio.run(main())


def test_a_proxy_facing_a_controller_without_sessions_stops_asking() -> None:
    from hostagent.masque.fastpath import ControllerFastPath

    async def main() -> None:
        address = f"127.0.0.1:{launcher.free_tcp_port()}"
        server = grpc.aio.server()  # no services: every method is UNIMPLEMENTED
        server.add_insecure_port(address)
        await server.start()
        hook = ControllerFastPath(address, "t-proxy")
        try:
            started = asyncio.get_running_loop().time()
            assert await hook.open_session(wait=10) is False
            assert asyncio.get_running_loop().time() - started < 5  # not the whole wait
            assert hook._session_task is not None and hook._session_task.done()
            assert "authorization" in dict(hook.call_options()["metadata"])
            assert "mp-session" not in dict(hook.call_options()["metadata"])
        finally:
            await hook.aclose()
            await server.stop(grace=0)

    asyncio.run(main())


def test_a_proxy_that_comes_back_within_the_grace_period_resumes_its_session() -> None:
    """The controller's northbound server goes away and comes back (a network blip, as
    far as the proxy can tell): mp-proxy's session code reconnects, names its session,
    and the controller resumes it: same id, the mapping still there. Gone for longer than
    the grace period, the session ends and its mapping goes."""
    from hostagent.masque.fastpath import ControllerFastPath

    async def main() -> None:
        svc = service(grace=3.0)
        address = svc.config.northbound
        server = await serve(svc, address)
        hook = ControllerFastPath(address, "t-proxy")
        try:
            assert await hook.open_session(wait=10)
            first = hook.session_id
            await hook.stub().InstallQuicMapping(MAPPING, **hook.call_options())
            await server.stop(grace=0)  # the stream breaks; the service keeps the session
            await wait_until(lambda: not svc.sessions.sessions[first].attached,
                             "the controller to see the stream gone")
            server = await serve(svc, address)
            await wait_until(lambda: svc.sessions.sessions.get(first) is not None
                             and svc.sessions.sessions[first].attached,
                             "the proxy to resume its session")
            assert hook.session_id == first and len(svc.store.quic_mappings()) == 1
            assert svc.sessions.sessions[first].count("quic_mapping") == 1
        finally:
            await hook.aclose()  # ends the session: after the grace period, removal
        await wait_until(lambda: not svc.store.quic_mappings(), "the removal", timeout=10)
        await server.stop(grace=0)

    asyncio.run(main())


def test_only_its_owner_resumes_a_detached_session() -> None:
    svc = service()
    proxy, other = svc.config.client_by_token("t-proxy"), svc.config.client_by_token("t-proxy2")
    assert proxy is not None and other is not None
    session = svc.sessions.open(proxy)
    assert svc.sessions.resume(session.session_id, proxy) is None  # attached: not twice
    session.attached = False
    assert svc.sessions.resume(session.session_id, other) is None
    assert svc.sessions.resume("0123456789abcdef", proxy) is None
    assert svc.sessions.resume(session.session_id, proxy) is session and session.attached


def test_rules_removed_with_an_ended_session_are_installed_again_in_the_next() -> None:
    """The controller is gone for longer than the grace period: it ends the session and
    removes the proxy's mapping. When it is back, the proxy's new session installs the
    forwarding table's rules again."""
    from hostagent.masque.fastpath import ControllerFastPath
    from hostagent.masque.switch_forwarding import ControllerForwardingTable
    from tests.masque.test_switch_forwarding import rule

    async def main() -> None:
        svc = service(grace=0.1)
        address = svc.config.northbound
        server = await serve(svc, address)
        hook = ControllerFastPath(address, "t-proxy")
        table = ControllerForwardingTable(hook)
        try:
            assert await hook.open_session(wait=10)
            first = hook.session_id
            await table.install(rule())
            assert len(svc.store.quic_mappings()) == 1
            await server.stop(grace=0)
            await wait_until(lambda: not svc.store.quic_mappings(), "the grace to pass")
            server = await serve(svc, address)
            await wait_until(lambda: table.stats["reinstalled"] == 1, "the reinstall")
            assert hook.session_id not in (None, first)
            [back] = svc.store.quic_mappings()
            assert (back.src_port, back.dcid) == (5000, b"\x11" * 8)
            assert svc.sessions.sessions[hook.session_id].count("quic_mapping") == 1
        finally:
            await hook.aclose()
            await server.stop(grace=0)

    asyncio.run(main())
