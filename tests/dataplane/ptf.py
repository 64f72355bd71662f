"""PTF-style packet I/O on veth pairs: send on a port, expect exactly these packets on
these ports and nothing elsewhere. The switch owns one end of each pair; the test
owns the other end, with IPv6 disabled and no address, so the kernel sends nothing."""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Iterable

from scapy.layers.l2 import Ether
from scapy.packet import Packet

from netlab.veth import no_ipv6, offloads_off

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class VethPorts:
    """Veth pairs `{prefix}{n}s` (switch side) / `{prefix}{n}t` (test side) for ports 1..n."""

    def __init__(self, count: int, prefix: str = "mpdp") -> None:
        self.ports = list(range(1, count + 1))
        self.prefix = prefix
        self.sockets: dict[int, socket.socket] = {}

    def switch_if(self, port: int) -> str:
        return f"{self.prefix}{port}s"

    def test_if(self, port: int) -> str:
        return f"{self.prefix}{port}t"

    def create(self) -> None:
        self.destroy()
        for port in self.ports:
            a, b = self.switch_if(port), self.test_if(port)
            _ip("link", "add", a, "type", "veth", "peer", "name", b)
            for ifname in (a, b):
                # offloads off on both ends before the switch opens its end: with them
                # on, BMv2's capture lost frames under load (see netlab.veth)
                no_ipv6(ifname)
                offloads_off(ifname)
                _ip("link", "set", ifname, "up")
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((b, 0))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sockets[port] = sock

    def destroy(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        for port in self.ports:
            subprocess.run(["ip", "link", "delete", self.switch_if(port)], capture_output=True)

    def send(self, port: int, packet: Packet | bytes) -> None:
        self.sockets[port].send(bytes(packet))

    def drain(self) -> None:
        """Forget whatever arrived so far."""
        self.receive(timeout=0.05)

    def receive(self, timeout: float) -> dict[int, list[bytes]]:
        """Frames the switch sent, per port, until `timeout` passes with nothing new."""
        got: dict[int, list[bytes]] = {p: [] for p in self.ports}
        by_fd = {s.fileno(): (p, s) for p, s in self.sockets.items()}
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            ready, _, _ = select.select(list(by_fd), [], [], left)
            for fd in ready:
                port, sock = by_fd[fd]
                data, addr = sock.recvfrom(65535)
                if addr[2] != PACKET_OUTGOING:
                    got[port].append(data)
                    deadline = max(deadline, time.monotonic() + 0.2)

    def expect(self, expected: dict[int, Iterable[Packet | bytes]], timeout: float = 1.0) -> None:
        """Exactly these frames on these ports (in order), and nothing on any port."""
        want = {p: [bytes(x) for x in expected.get(p, [])] for p in self.ports}
        got = self.receive(timeout)
        if got != want:
            lines = []
            for port in self.ports:
                if got[port] != want[port]:
                    lines.append(f"port {port}: expected {len(want[port])}, got {len(got[port])}")
                    for frame in want[port]:
                        lines.append(f"  want {Ether(frame).summary()} {frame.hex()}")
                    for frame in got[port]:
                        lines.append(f"  got  {Ether(frame).summary()} {frame.hex()}")
            raise AssertionError("\n".join(lines))

    def expect_nothing(self, timeout: float = 0.5) -> None:
        self.expect({}, timeout)
