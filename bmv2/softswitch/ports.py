"""Switch ports of the built-in target: AF_PACKET sockets, strict-priority egress queues
and a port-level rate shaper.

Each port has `queues` FIFO queues of at most `depth` packets; the highest
non-empty queue (queues-1) is always served first, as BMv2's
`--priority-queues` promises. A packet whose priority is >= `queues` is dropped,
as in BMv2. Unlike BMv2, whose `set_queue_rate` limits each priority queue on
its own (so a port shaped to R pps can send up to N x R, and a low-priority
packet whose time has come can leave before a high-priority one), the rate
here is one shaper per port in bits per second: the strict priority holds at a
bottleneck, which is what the switch-scheduling experiments need.

A queued packet has been through ingress only: the transmit thread runs its egress
(`leave()`) when it takes the packet from its queue, as simple_switch does after its
traffic manager, so what egress counts (AIFO's and PACKS's occupancy) follows the queues.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("mp-switch.ports")

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
DEFAULT_DEPTH = 64  # BMv2's default queue depth, in packets
#: a queued packet: called when it leaves its queue, it runs egress and returns the frame
#: to send (None: egress dropped it)
Leave = Callable[[], "bytes | None"]


@dataclass
class PortStats:
    rx: int = 0
    tx: int = 0
    queue_drops: list[int] = field(default_factory=list)
    bad_priority: int = 0


def choose(queues: list[deque[tuple[float, Any]]], free_at: float
           ) -> deque[tuple[float, Any]] | None:
    """The queue whose head goes next (queues hold (time queued, packet); the last queue
    has the highest priority): the highest-priority head among the packets queued by
    `free_at`, when the port became free, which is the choice the port would have made
    then however late the transmit thread runs; when none was queued by then, the first
    packet queued after it (it found the port idle). None when every queue is empty."""
    first = None
    for q in reversed(queues):
        if q:
            if q[0][0] <= free_at:
                return q
            if first is None or q[0][0] < first[0][0]:
                first = q
    return first


class EgressPort:
    """One port's socket, queues, shaper and transmit thread."""

    def __init__(self, number: int, ifname: str, queues: int, depth: int = DEFAULT_DEPTH,
                 rate_bps: int | None = None) -> None:
        self.number = number
        self.ifname = ifname
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        #: per priority: (when queued, leave) of each waiting packet
        self.queues: list[deque[tuple[float, Leave]]] = [deque() for _ in range(queues)]
        self.depth = depth
        self.rate_bps = rate_bps
        self.stats = PortStats(queue_drops=[0] * queues)
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._transmit_loop, daemon=True,
                                        name=f"tx-{number}")

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, priority: int, leave: Leave) -> bool:
        """Queue a packet, `leave()` giving its frame (after egress) when it leaves; False
        (and counted) if the priority is invalid or the queue full."""
        with self._cond:
            if not 0 <= priority < len(self.queues):
                self.stats.bad_priority += 1
                return False
            q = self.queues[priority]
            if len(q) >= self.depth:
                self.stats.queue_drops[priority] += 1
                return False
            q.append((time.monotonic(), leave))
            self._cond.notify()
            return True

    def _next(self, free_at: float) -> tuple[float, Leave] | None:
        """The next packet to send (see `choose`), waiting for one; None when stopping."""
        with self._cond:
            while not self._stopping:
                q = choose(self.queues, free_at)
                if q is not None:
                    return q.popleft()
                self._cond.wait()
            return None

    def _transmit_loop(self) -> None:
        free_at = time.monotonic()
        while True:
            # unshaped, every queued packet is a candidate: strict priority as it stands
            item = self._next(free_at if self.rate_bps else float("inf"))
            if item is None:
                return
            queued, leave = item
            try:
                frame = leave()
            except Exception:  # a bad frame must never stop the port
                log.exception("port %d: frame dropped by an internal error", self.number)
                continue
            if frame is None:  # egress dropped it
                continue
            if self.rate_bps:
                # The frame starts when the previous one ends or when it was queued, not
                # when this thread gets to it: the time spent on egress, the send call and
                # a late wake-up does not add up to a slower port over a busy period.
                now = time.monotonic()
                start = max(queued, free_at)
                free_at = start + len(frame) * 8 / self.rate_bps
                if free_at > now:  # the frame is on the wire until free_at
                    time.sleep(free_at - now)
            try:
                self.sock.send(frame)
                self.stats.tx += 1
            except OSError as exc:
                log.warning("port %d (%s): send failed: %s", self.number, self.ifname, exc)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=2)
        self.sock.close()


class PortSet:
    """All ports: one receive thread feeding `process(frame, port)`, a transmit thread each."""

    def __init__(self, ports: dict[int, str], queues: int, depth: int = DEFAULT_DEPTH,
                 rates: dict[int, int] | None = None) -> None:
        rates = rates or {}
        self.ports = {n: EgressPort(n, ifname, queues, depth, rates.get(n))
                      for n, ifname in sorted(ports.items())}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(self, number: int, priority: int, leave: Leave) -> None:
        """Queue a packet at port `number` (see `EgressPort.enqueue`)."""
        port = self.ports.get(number)
        if port is None:
            log.debug("packet to unknown port %d dropped", number)
            return
        port.enqueue(priority, leave)

    def start(self, process: Callable[[bytes, int], None]) -> None:
        for port in self.ports.values():
            port.start()
        self._thread = threading.Thread(target=self._receive_loop, args=(process,),
                                        daemon=True, name="rx")
        self._thread.start()

    def _receive_loop(self, process: Callable[[bytes, int], None]) -> None:
        sel = selectors.DefaultSelector()
        for port in self.ports.values():
            sel.register(port.sock, selectors.EVENT_READ, port)
        while not self._stopping.is_set():
            for key, _ in sel.select(timeout=0.2):
                port = key.data
                try:
                    frame, addr = port.sock.recvfrom(65535)
                except OSError:
                    continue
                if addr[2] == PACKET_OUTGOING:
                    continue
                port.stats.rx += 1
                try:
                    process(frame, port.number)
                except Exception:  # a bad frame must never stop the switch
                    log.exception("port %d: frame dropped by an internal error", port.number)
        sel.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for port in self.ports.values():
            port.stop()
