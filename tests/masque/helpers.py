"""A proxy and echo targets on loopback in this process, and raw CONNECT-UDP requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from hostagent.masque.client import MasqueClient
from hostagent.masque.proxy import MasqueProxy, ProxySettings
from hostagent.masque.target import EchoTargets

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a coroutine in a fresh event loop, bounded in time."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def open_fds() -> int:
    """File descriptors this process holds now."""
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Env:
    proxy: MasqueProxy
    targets: EchoTargets

    @property
    def proxy_port(self) -> int:
        assert self.proxy.port is not None
        return self.proxy.port

    @property
    def udp_port(self) -> int:
        assert self.targets.udp_port is not None
        return self.targets.udp_port

    @property
    def quic_port(self) -> int:
        assert self.targets.quic_port is not None
        return self.targets.quic_port

    def client(self, **kwargs: Any) -> MasqueClient:
        return MasqueClient(LOOPBACK, self.proxy_port, **kwargs)


@contextlib.asynccontextmanager
async def environment(**settings: Any) -> AsyncIterator[Env]:
    """A proxy allowing 127.0.0.0/8 (unless told otherwise) and UDP + QUIC echo targets."""
    settings.setdefault("allow", ["127.0.0.0/8"])
    proxy = MasqueProxy(ProxySettings(**settings))
    targets = EchoTargets()
    try:
        await proxy.start(LOOPBACK, 0)
        await targets.start_udp(LOOPBACK, 0)
        await targets.start_quic(LOOPBACK, 0)
        yield Env(proxy, targets)
    finally:
        await proxy.close()
        targets.close()
        await asyncio.sleep(0.05)


async def raw_request(client: MasqueClient, headers: list[tuple[bytes, bytes]],
                      timeout: float = 5.0) -> dict[bytes, bytes]:
    """Send request headers as they are (malformed ones too); the response headers."""
    proto = client._proto
    stream_id = proto.connection.open_stream()
    fut: asyncio.Future[tuple[dict[bytes, bytes], bool]] = (
        asyncio.get_running_loop().create_future())
    proto.responses[stream_id] = fut
    proto.h3.send_headers(stream_id, headers)
    proto.kick()
    async with asyncio.timeout(timeout):
        answer, _ended = await fut
    return answer


def connect_udp_headers(path: str, **overrides: bytes | None) -> list[tuple[bytes, bytes]]:
    """A CONNECT-UDP request for `path`; keyword overrides replace (None: drop) a field."""
    fields = {":method": b"CONNECT", ":protocol": b"connect-udp", ":scheme": b"https",
              ":authority": b"proxy.test", ":path": path.encode(), "capsule-protocol": b"?1"}
    for key, value in overrides.items():
        name = key.replace("_", "-") if not key.startswith("p_") else ":" + key[2:]
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return [(k.encode(), v) for k, v in fields.items()]


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0,
                   what: str = "condition") -> None:
    """Poll `predicate` until true; AssertionError after `timeout`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    """asyncio.gather, typed."""
    return list(await asyncio.gather(*aws))
