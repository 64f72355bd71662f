"""Interop with picoquic's picomask (private-octopus/picoquic, picohttp/picomask.c), both
ways, on loopback. picoquic ships no picomask program, only the library code and a
simulated-network unit test; MP_PICOMASK names a small driver around the library that
the user builds beside the project (its command line is in docs/interop.md, "Picomask
(picoquic)"; neither it nor picoquic is part of this repository). Without it, every test
skips and says so.

What these tests hold is what the trial found at picoquic d199d45 (2026-08-16):
picomask implements CONNECT-UDP (RFC 9298) in datagram mode only and nothing of
draft-ietf-masque-quic-proxy; its HTTP Datagrams carry no Context ID; its client sends
no :authority unless the application opens the tunnel itself. The tests named
`..._picomask_..._without_context_id` fail when picomask starts sending the Context ID:
then docs/interop.md needs updating."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from hostagent.certs import credential_files
from hostagent.masque.client import MasqueClient
from tests.interop.conftest import Processes, free_udp_port, loopback

pytestmark = pytest.mark.interop

#: picomask's proxy serves this template (the one of its own unit test); its client
#: expands the same.
PICOMASK_TEMPLATE = "/masque/udp?h={target_host}&p={target_port}"
PICOMASK_PATH = "/masque/udp"


@pytest.fixture(scope="session")
def picomask() -> Path:
    """The picomask driver: MP_PICOMASK, or `picomask` on PATH; skips when neither."""
    given = os.environ.get("MP_PICOMASK") or shutil.which("picomask")
    if not given:
        pytest.skip("picomask driver not found: set MP_PICOMASK to it (docs/interop.md, "
                    "'Picomask (picoquic)')")
    path = Path(given)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"MP_PICOMASK={given} is not an executable file")
    return path


@pytest.fixture
def procs() -> Iterator[Processes]:
    with ExitStack() as stack:
        yield Processes(stack, None)


def picomask_proxy(procs: Processes, binary: Path) -> int:
    """picomask's proxy on a free port (it binds the wildcard address); the port."""
    cert, key = procs.stack.enter_context(credential_files())
    port = free_udp_port("0.0.0.0")
    procs.start([str(binary), "proxy", str(port), str(cert), str(key)], r"^ready",
                "picomask proxy")
    return port


def picomask_client(binary: Path, proxy: str, target: str, authority: str | None = None,
                    ) -> subprocess.CompletedProcess[str]:
    """picomask's client: an inner QUIC connection (ALPN mp-echo) to `target` through
    `proxy`, one stream echoed; exit 0 when it came back (within 10 s)."""
    env = {k: v for k, v in os.environ.items() if k != "PM_AUTHORITY"}
    if authority:
        env["PM_AUTHORITY"] = authority
    p_host, p_port = proxy.rsplit(":", 1)
    t_host, t_port = target.rsplit(":", 1)
    return subprocess.run([str(binary), "client", p_host, p_port, t_host, t_port],
                          capture_output=True, text=True, timeout=30, env=env)


async def _probe(proxy_port: int, target_host: str, quic_forwarding: bool = False,
                 ) -> tuple[list[bytes], bytes | None, int, str]:
    """One UDP payload (b"PING") through a tunnel of our client to a raw UDP socket that
    answers b"REPLY": what the target received, what came back, the datagrams our
    client dropped for their context ID, and why forwarded mode was not granted."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((target_host, 0))
    sock.setblocking(False)
    received: list[bytes] = []

    async def answer() -> None:
        while True:
            data, addr = await loop.sock_recvfrom(sock, 2048)
            received.append(data)
            await loop.sock_sendto(sock, b"REPLY", addr)

    server = asyncio.create_task(answer())
    try:
        async with MasqueClient("127.0.0.1", proxy_port,
                                template_path=PICOMASK_TEMPLATE) as client:
            tunnel = await client.open_udp(target_host, sock.getsockname()[1],
                                           quic_forwarding=quic_forwarding)
            tunnel.send(b"PING")
            try:
                reply: bytes | None = await tunnel.recv(timeout=2)
            except TimeoutError:
                reply = None
            return received, reply, tunnel.dropped_context, tunnel.quic_forwarding_reason
    finally:
        server.cancel()
        sock.close()


# -- our client through picomask's proxy ---------------------------------------------------

def test_mp_client_through_picomask_proxy_without_context_id(procs: Processes,
                                                             picomask: Path) -> None:
    """The tunnel opens (extended CONNECT, HTTP Datagrams), but picomask's proxy sends our
    Context ID (0x00) to the target as payload and answers without one, so our client
    reads the first payload byte as a context ID and drops the answer (RFC 9298 section
    4: unknown contexts are dropped)."""
    port = picomask_proxy(procs, picomask)
    received, reply, dropped, _ = asyncio.run(_probe(port, loopback(1)))
    assert received == [b"\x00PING"], ("picomask's proxy now strips the Context ID: "
                                       f"update docs/interop.md ({received})")
    assert reply is None and dropped == 1


def test_mp_client_udp_echo_through_picomask_proxy(procs: Processes, picomask: Path) -> None:
    """mp-client's UDP echo passes all the same: the target echoes the context ID byte
    that it received, and picomask's proxy sends that back as the first payload byte."""
    target = procs.mp_target(loopback(1))
    port = picomask_proxy(procs, picomask)
    done = subprocess.run([sys.executable, "-m",
                           "hostagent.masque.client_cli", f"127.0.0.1:{port}", "--target",
                           target["udp"], "--protocol", "udp", "--count", "3", "--size", "500",
                           "--template", PICOMASK_TEMPLATE],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "extended CONNECT yes, HTTP Datagrams yes" in done.stdout
    assert "datagram udp: 3 x 500 B" in done.stdout, done.stdout


def test_mp_client_forwarded_mode_falls_back_with_picomask_proxy(procs: Processes,
                                                                 picomask: Path) -> None:
    """Asked for forwarded mode, picomask's proxy answers 200 without
    Proxy-QUIC-Forwarding and ignores our REGISTER_CLIENT_CID capsule: our client stays
    tunnelled and says why."""
    port = picomask_proxy(procs, picomask)
    _, _, _, reason = asyncio.run(_probe(port, loopback(1), quic_forwarding=True))
    assert reason == "the proxy does not speak draft-ietf-masque-quic-proxy-06"


# -- picomask's client through mp-proxy ----------------------------------------------------

def test_picomask_client_request_lacks_authority(procs: Processes, picomask: Path) -> None:
    """picomask opens a tunnel when its intercept sees the inner connection's first
    packet, with no :authority (RFC 9298 section 3.4: it SHALL be the proxy's); mp-proxy's
    HTTP/3 layer closes the connection with H3_MESSAGE_ERROR."""
    target = procs.mp_target(loopback(1), udp=False, quic=True)
    proxy, px = procs.mp_proxy(loopback(2), "--template", PICOMASK_TEMPLATE)
    done = picomask_client(picomask, proxy, target["quic"])
    assert done.returncode != 0, done.stdout
    assert any("Pseudo-headers [b':authority'] are missing" in line for line in px.output), \
        list(px.output)


def test_picomask_client_through_mp_proxy_without_context_id(procs: Processes,
                                                             picomask: Path) -> None:
    """With :authority (the driver opens the tunnel itself), mp-proxy opens the tunnel in
    datagram mode (a datagram that picomask sends before the response is kept for it,
    not dropped: tests/masque/test_early_datagrams.py); but every
    datagram lacks the Context ID, so mp-proxy drops them all as unknown contexts and
    the inner handshake never completes."""
    target = procs.mp_target(loopback(1), udp=False, quic=True)
    proxy, px = procs.mp_proxy(loopback(2), "--template", PICOMASK_TEMPLATE,
                               "--quic-forwarding")
    done = picomask_client(picomask, proxy, target["quic"], authority=proxy)
    assert done.returncode != 0, ("picomask's client now sends the Context ID: update "
                                  "docs/interop.md\n" + done.stdout)
    px.stop()
    lines = list(px.output)
    assert any(re.search(r"tunnel open .* mode datagram", line) for line in lines), lines
    close = next(line for line in lines if "tunnel close" in line)
    unknown = int(re.search(r"unknown contexts (\d+)", close).group(1))  # type: ignore[union-attr]
    assert unknown >= 1 and re.search(r"up 0 pkts", close), close
    counters = next(line for line in lines if "counters:" in line)
    assert "'datagrams_without_tunnel': 0" in counters, counters  # none lost before the 2xx
    assert not any(re.search(r"tunnel .*: forwarded mode, transform", x) for x in lines)
