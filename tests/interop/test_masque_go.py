"""Interop with quic-go/masque-go (v0.4.0, pinned in tests/interop/masquego/go.mod), both
ways, on loopback: mp-client and our client library through masque-go's proxy, masque-go's
client through mp-proxy; UDP echo, an inner QUIC connection, many tunnels at once, a target
that goes away, and each refusal with its Proxy-Status as the peer sees it. What differs
from the RFCs on either side is in docs/interop.md; the tests named `..._masque_go_...drops`
hold the evidence of masque-go's side."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostagent.masque.client import MasqueClient, TunnelRefused
from hostagent.masque.wire import parse_proxy_status
from tests.interop.conftest import Processes, json_lines, loopback, wait_for_line

# the suite's 300-s timeout: the first test may wait for a cold `go build`
pytestmark = pytest.mark.interop


def mp_client(proxy: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run mp-client (this interpreter's) to completion."""
    return subprocess.run([sys.executable, "-m", "hostagent.masque.client_cli", proxy, *args],
                          capture_output=True, text=True, timeout=timeout)


def go_client(binary: Path, proxy: str, *args: str,
              timeout: float = 60) -> tuple[int, list[dict], str]:
    """Run masque-go's client (our program); exit code, its JSON reports, stderr."""
    done = subprocess.run([str(binary), "client", "--proxy", proxy, *args],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, json_lines(done.stdout), done.stderr


# -- mp-client and our library through masque-go's proxy ------------------------------------

def test_mp_client_udp_echo_through_masque_go_proxy(procs: Processes) -> None:
    target = procs.mp_target(loopback(1))
    proxy, px = procs.masque_go_proxy(loopback(2))
    done = mp_client(proxy, "--target", target["udp"], "--protocol", "udp", "--count", "5",
                     "--size", "1200")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "extended CONNECT yes, HTTP Datagrams yes" in done.stdout
    assert "datagram udp: 5 x 1200 B" in done.stdout, done.stdout
    wait_for_line(px, rf"tunnel close #1 .* -> {target['udp']}")


def test_mp_client_inner_quic_through_masque_go_proxy(procs: Processes) -> None:
    target = procs.mp_target(loopback(1), udp=False, quic=True)
    proxy, _ = procs.masque_go_proxy(loopback(2))
    done = mp_client(proxy, "--target", target["quic"], "--protocol", "quic", "--count", "4",
                     "--size", "5000", "--inner-scheduler", "abs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "datagram quic: 4 x 5000 B" in done.stdout, done.stdout


def test_our_fast_path_request_is_ignored_by_masque_go(procs: Processes) -> None:
    """masque-fastpath is this project's header; a proxy that does not know it answers a
    plain 200, and mp-client keeps the tunnel on the slow path and says why."""
    target = procs.mp_target(loopback(1))
    proxy, _ = procs.masque_go_proxy(loopback(2))
    done = mp_client(proxy, "--target", target["udp"], "--protocol", "udp", "--count", "3",
                     "--fastpath")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "datagram udp: 3 x 1000 B" in done.stdout
    assert ("fast path: the proxy left the tunnel on the slow path (the proxy did not grant "
            "it)") in done.stdout, done.stdout


def test_many_mp_client_tunnels_at_once_through_masque_go_proxy(procs: Processes) -> None:
    target = procs.mp_target(loopback(1))
    proxy, px = procs.masque_go_proxy(loopback(2))
    done = mp_client(proxy, "--target", target["udp"], "--protocol", "udp", "--tunnels", "40",
                     "--count", "3", "--size", "500")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("datagram udp: 3 x 500 B") == 40, done.stdout
    wait_for_line(px, r"tunnel open #40 ")


async def _refusal(proxy: str, target: tuple[str, int], template: str | None = None,
                   tunnels: int = 1) -> list[TunnelRefused]:
    host, port = proxy.rsplit(":", 1)
    kwargs = {"template_path": template} if template else {}
    async with MasqueClient(host, int(port), **kwargs) as client:
        results = await asyncio.gather(*(client.open_udp(*target, timeout=10)
                                         for _ in range(tunnels)), return_exceptions=True)
        for r in results:
            if not isinstance(r, TunnelRefused | BaseException):
                r.close()
        return [r for r in results if isinstance(r, TunnelRefused)]


@pytest.mark.parametrize("case", ["403", "429", "400"])
def test_masque_go_proxy_refusals_as_our_client_sees_them(procs: Processes, case: str) -> None:
    """Our wrapper around masque-go's proxy answers with RFC 9209 Proxy-Status (masque-go's
    own example answers a bare status); our client reads status, error and details."""
    target = procs.mp_target(loopback(1))
    t_host, t_port = target["udp"].rsplit(":", 1)
    flags = {"403": ("--allow", "192.0.2.0/24"), "429": ("--max-tunnels", "2"), "400": ()}
    proxy, _ = procs.masque_go_proxy(loopback(2), *flags[case])
    template = "/masque/{target_host}/{target_port}" if case == "400" else None
    refusals = asyncio.run(_refusal(proxy, (t_host, int(t_port)), template,
                                    tunnels=3 if case == "429" else 1))
    [refused] = refusals  # of three tunnels on one connection, only the third is refused
    expect = {"403": (403, "destination_ip_prohibited"), "429": (429, "connection_limit_reached"),
              "400": (400, "http_request_error")}[case]
    assert (refused.status, refused.proxy_status["error"]) == expect
    assert refused.headers[b"proxy-status"].startswith(b"masquego;")
    assert refused.proxy_status["details"], refused.headers


def test_masque_go_proxy_ends_the_tunnel_when_the_target_goes_away(procs: Processes) -> None:
    """A target that stops listening: masque-go's proxy reads ECONNREFUSED (the ICMP port
    unreachable), ends the request stream, and our client sees the tunnel closed."""
    proxy, px = procs.masque_go_proxy(loopback(2))
    host = loopback(1)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.setblocking(False)
        p_host, p_port = proxy.rsplit(":", 1)
        async with MasqueClient(p_host, int(p_port)) as client:
            tunnel = await client.open_udp(host, sock.getsockname()[1])
            tunnel.send(b"ping")
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 100), 5)
            assert data == b"ping"
            sock.sendto(b"pong", addr)
            assert await tunnel.recv(timeout=5) == b"pong"
            sock.close()  # the target goes away
            for _ in range(50):
                tunnel.send(b"anyone?")
                await asyncio.sleep(0.05)
                if tunnel.closed.is_set():
                    break
            return tunnel.close_reason

    assert asyncio.run(asyncio.wait_for(main(), 30)) == "the proxy ended the stream"
    wait_for_line(px, r"connection refused")
    wait_for_line(px, r"tunnel close #1 ")


def test_masque_go_proxy_drops_datagram_capsules(procs: Processes) -> None:
    """Evidence for docs/interop.md: masque-go v0.4.0 reads and discards every capsule on the
    request stream ("skipping capsule of type 0"), so stream mode (DATAGRAM capsules, RFC 9297
    section 3.5) carries nothing through it. If this fails after a masque-go upgrade, the
    deviation is gone: update the page."""
    target = procs.mp_target(loopback(1))
    proxy, px = procs.masque_go_proxy(loopback(2))
    done = mp_client(proxy, "--target", target["udp"], "--protocol", "udp", "--mode",
                     "stream", "--count", "1", "--timeout", "2")
    assert done.returncode == 1
    assert "failed" in done.stdout, done.stdout
    wait_for_line(px, r"skipping capsule of type 0")


# -- masque-go's client through mp-proxy -----------------------------------------------------

def test_masque_go_client_udp_echo_through_mp_proxy(procs: Processes, masquego: Path) -> None:
    target = procs.mp_target(loopback(1))
    proxy, px = procs.mp_proxy(loopback(2))
    # 1280 B: a usual QUIC packet size, which mp-proxy once sent back as a capsule
    code, reports, err = go_client(masquego, proxy, "--target", target["udp"], "--tunnels",
                                   "3", "--count", "5", "--size", "1280")
    assert code == 0, (reports, err)
    assert len(reports) == 3
    assert all(r["status"] == 200 and r["echoed"] == 5 for r in reports), reports
    wait_for_line(px, r"tunnel open .* mode datagram")
    wait_for_line(px, r"tunnel close .*client reset the stream.*up 5 pkts/6400 B, "
                      r"down 5 pkts/6400 B")


def test_masque_go_client_inner_quic_through_mp_proxy(procs: Processes, masquego: Path) -> None:
    target = procs.mp_target(loopback(1), udp=False, quic=True)
    proxy, _ = procs.mp_proxy(loopback(2))
    code, reports, err = go_client(masquego, proxy, "--target", target["quic"], "--protocol",
                                   "quic", "--count", "4", "--size", "5000")
    assert code == 0, (reports, err)
    [report] = reports
    assert report["echoed"] == 4 and report["error"] == "", report


def test_many_masque_go_tunnels_at_once_through_mp_proxy(procs: Processes,
                                                         masquego: Path) -> None:
    target = procs.mp_target(loopback(1))
    proxy, px = procs.mp_proxy(loopback(2))
    code, reports, err = go_client(masquego, proxy, "--target", target["udp"], "--tunnels",
                                   "50", "--count", "5", "--size", "800")
    assert code == 0, (reports, err)
    assert len(reports) == 50 and sum(r["echoed"] for r in reports) == 250
    wait_for_line(px, r"tunnel open .*opened 50,")


def test_capsules_from_a_quic_go_client_through_mp_proxy(procs: Processes,
                                                          masquego: Path) -> None:
    """Stream mode from a peer that is not aioquic (our program's capsule code on quic-go's
    http3): mp-proxy reads and answers DATAGRAM capsules."""
    target = procs.mp_target(loopback(1))
    proxy, px = procs.mp_proxy(loopback(2))
    code, reports, err = go_client(masquego, proxy, "--target", target["udp"], "--mode",
                                   "stream", "--count", "5", "--size", "3000")
    assert code == 0, (reports, err)
    assert reports[0]["echoed"] == 5
    wait_for_line(px, r"tunnel open .* mode stream")


@pytest.mark.parametrize("case", ["port 0", "template", "403", "429"])
def test_mp_proxy_refusals_as_masque_go_sees_them(procs: Processes, masquego: Path,
                                                  case: str) -> None:
    target = procs.mp_target(loopback(1))
    args = ["--target", target["udp"], "--count", "1"]
    expect = {"port 0": (400, "http_request_error", "port"),
              "template": (400, "http_request_error", "does not match"),
              "403": (403, "destination_ip_prohibited", "outside the allowed networks"),
              "429": (429, "connection_limit_reached", "at most 2 tunnels")}[case]
    flags: tuple[str, ...] = ()
    if case == "port 0":
        args[1] = target["udp"].rsplit(":", 1)[0] + ":0"
    elif case == "403":
        flags = ("--allow", "192.0.2.0/24")
    elif case == "429":
        flags = ("--max-tunnels", "2")
        args += ["--tunnels", "3", "--hold", "1s"]
    proxy, px = procs.mp_proxy(loopback(2), *flags)
    if case == "template":
        args += ["--template", f"https://{proxy}/masque/udp/{{target_host}}/{{target_port}}/"]
    code, reports, err = go_client(masquego, proxy, *args)
    assert code == 1
    refused = [r for r in reports if r["status"] != 200]
    assert len(refused) == 1, reports
    if case == "429":
        assert sorted(r["status"] for r in reports) == [200, 200, 429]
    status = parse_proxy_status(refused[0]["proxy_status"])
    assert refused[0]["status"] == expect[0], refused
    assert refused[0]["proxy_status"].startswith("mp-proxy;") and status["error"] == expect[1]
    assert expect[2] in status["details"], status
    wait_for_line(px, rf"request refused .*: {expect[0]} {expect[1]}")


def test_mp_proxy_ends_the_tunnel_when_the_target_goes_away(procs: Processes,
                                                            masquego: Path) -> None:
    """The target stops: mp-proxy's socket reports the ICMP port unreachable, it closes the
    tunnel and ends the request stream (RFC 9298 section 3.1), and masque-go's client reads
    the end of the tunnel."""
    target = procs.mp_target(loopback(1))
    proxy, px = procs.mp_proxy(loopback(2))
    client = procs.start([str(masquego), "client", "--proxy", proxy, "--target", target["udp"],
                          "--count", "400", "--interval", "20ms", "--timeout", "300ms"],
                         None, "masque-go client", capture_stdout=True)
    wait_for_line(px, r"tunnel open ")
    time.sleep(0.5)
    procs.target.stop()
    out = client.communicate(timeout=30)
    assert client.poll() == 1
    [report] = json_lines(out)
    assert report["echoed"] > 5 and report["sent"] < 400, report
    assert report["closed"] == "receive: EOF", report
    wait_for_line(px, r"tunnel close .*socket error")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_ipv6_target_both_ways(procs: Processes, masquego: Path) -> None:
    """An IPv6 target: both clients expand the template the same way (2001:db8::42 is
    2001%3Adb8%3A%3A42, RFC 9298 section 2) and both proxies parse it."""
    echo = procs.start([str(masquego), "echo", "--listen", "[::1]:0"], r"^ready ", "echo")
    target = next(x for x in echo.output if x.startswith("ready ")).split()[1]
    mp_proxy, mpx = procs.mp_proxy(loopback(2), "--allow", "::1/128")
    code, reports, err = go_client(masquego, mp_proxy, "--target", target, "--count", "3")
    assert code == 0 and reports[0]["echoed"] == 3, (reports, err)
    wait_for_line(mpx, r"tunnel open .*->::1:")
    go_proxy, gpx = procs.masque_go_proxy(loopback(3))
    done = mp_client(go_proxy, "--target", target, "--protocol", "udp", "--count", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for_line(gpx, r"tunnel open .* -> \[::1\]:")


def test_masque_go_client_needs_http_datagrams(procs: Processes, masquego: Path) -> None:
    """mp-proxy --no-datagrams (no QUIC DATAGRAM frames, no SETTINGS_H3_DATAGRAM) offers only
    stream mode; masque-go's client, which has none, gives up before any request."""
    target = procs.mp_target(loopback(1))
    proxy, _ = procs.mp_proxy(loopback(2), "--no-datagrams")
    code, reports, err = go_client(masquego, proxy, "--target", target["udp"], "--count", "1")
    assert code == 1 and reports == []
    assert "masque: QUIC connection needs Datagram support" in err, err
