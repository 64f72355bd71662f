"""Userspace link emulator: forwards frames between two interfaces through a LinkModel each way.

For kernels without netem (see `netlab.linkemu`). `EmulatedLink` runs it in a
namespace of its own, between two veths; it can also be run by hand:

    python -m netlab.linkemu_bridge --a veth0 --b veth1 \\
        --a-to-b "rate=5mbit,delay=50ms,loss=1%,seed=1" --b-to-a "rate=5mbit,delay=50ms"

How it works: one AF_PACKET raw socket per interface (all protocols, promiscuous),
a single thread that waits in select() for frames or for the next departure.
Each received frame is given to the direction's LinkModel at its kernel receive
time (SO_TIMESTAMPNS), so a late wake-up of this process does not add to the
emulated delay; an accepted frame waits in a FIFO (departure times never
decrease, as the model preserves order) and is sent out of the other interface
when its time comes, to within the scheduler's wake-up latency (well under 1 ms
on an idle host). Frames this process sent are not read back (PACKET_IGNORE_OUTGOING,
and the packet type is checked too).

Frames are passed on as they are, up to 64 KiB: the interfaces' peers must not
hand it TSO/GSO super-frames or frames with an unfinished checksum, which it
could not send on. `EmulatedLink` turns those offloads off with ethtool.

On SIGTERM or SIGINT it prints one line of counters per direction to stderr and
exits 0. A bad spec is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from netlab.linkemu import SPEC_HELP, LinkModel, LinkParams, parse_spec

PROG = "linkemu_bridge"
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23
SO_TIMESTAMPNS = 35
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SOCKET_BUFFER = 8 << 20
MAX_FRAME = 65536
#: frames read from one socket before departures are looked at again
READ_BATCH = 64
_TIMESPEC = struct.Struct("@qq")


@dataclass
class Direction:
    """One direction of the bridge: frames read from `rx` leave through `tx` after `model`."""

    name: str
    rx: socket.socket
    tx: socket.socket
    model: LinkModel
    pending: deque[tuple[float, bytes]] = field(default_factory=deque)
    sent: int = 0
    send_errors: int = 0

    def summary(self) -> str:
        """Counters as `name received=.. sent=.. dropped_loss=.. dropped_queue=.. ...`."""
        s = self.model.stats
        return (f"{self.name} received={s.received} sent={self.sent} "
                f"dropped_loss={s.dropped_loss} dropped_queue={s.dropped_queue} "
                f"send_errors={self.send_errors} unsent={len(self.pending)}")


def open_interface(ifname: str) -> socket.socket:
    """A non-blocking raw socket reading every frame `ifname` receives, and sending on it.

    Made with protocol 0 and then bound with ETH_P_ALL, so that it never holds
    frames of other interfaces; promiscuous, with kernel receive timestamps and
    large buffers (a burst must not be lost in the socket instead of the model).
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, ETH_P_ALL))
        mreq = struct.pack("iHH8s", socket.if_nametoindex(ifname), PACKET_MR_PROMISC, 0, b"")
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        # kernels before 4.20 lack it: the packet type check in `_receive` suffices there
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF),
                             (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


PRIORITIES = ("realtime", "high", "normal")
RT_PRIORITY = 10
NICE_HIGH = -10


def raise_priority(wanted: str) -> str:
    """Make this process's wake-ups prompt on a busy host; returns what it got.

    A frame is sent late by however long this process waits for a CPU after its
    timer fires, so on a host busy with other work the emulated delay would grow.
    "realtime" asks for SCHED_FIFO at a low real-time priority (the loop always
    blocks between frames, and the kernel's real-time throttling still leaves
    other work CPU time), falling back to "high" (nice -10), falling back to "normal".
    """
    if wanted == "realtime":
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
            return f"realtime (SCHED_FIFO {RT_PRIORITY})"
        except (OSError, AttributeError):
            wanted = "high"
    if wanted == "high":
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE_HIGH)
            return f"high (nice {NICE_HIGH})"
        except OSError:
            pass
    return "normal"


class Bridge:
    """The forwarding loop over two directions; `stop()` (signal-safe) ends `run()`."""

    def __init__(self, directions: Sequence[Direction]) -> None:
        self.directions = list(directions)
        self._by_rx = {d.rx.fileno(): d for d in self.directions}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = False

    def stop(self) -> None:
        """Ask `run()` to return; safe to call from a signal handler."""
        self._stopping = True
        with contextlib.suppress(OSError):  # the pipe is full: a wake-up is pending anyway
            os.write(self._wake_w, b"x")

    def _receive(self, d: Direction) -> None:
        """Read up to READ_BATCH frames from `d.rx` and give each to the model."""
        mono, real = time.monotonic(), time.time()
        for _ in range(READ_BATCH):
            try:
                frame, ancdata, _flags, addr = d.rx.recvmsg(MAX_FRAME, 64)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            arrival = mono
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(data)
                    arrival = min(mono, mono - (real - (sec + nsec * 1e-9)))
            departure = d.model.offer(arrival, len(frame))
            if departure is not None:
                d.pending.append((departure, frame))

    def _send_due(self, now: float) -> None:
        for d in self.directions:
            pending = d.pending
            while pending and pending[0][0] <= now:
                frame = pending.popleft()[1]
                try:
                    d.tx.send(frame)
                    d.sent += 1
                except OSError:
                    d.send_errors += 1

    def run(self) -> None:
        """Forward until `stop()`: send what is due, then sleep until a frame or a departure."""
        readers = [d.rx for d in self.directions] + [self._wake_r]
        while not self._stopping:
            now = time.monotonic()
            self._send_due(now)
            heads = [d.pending[0][0] for d in self.directions if d.pending]
            timeout = max(0.0, min(heads) - time.monotonic()) if heads else None
            ready, _, _ = select.select(readers, [], [], timeout)
            for r in ready:
                if isinstance(r, int):  # the wake-up pipe
                    continue
                self._receive(self._by_rx[r.fileno()])

    def summary(self) -> str:
        """One line: the counters of both directions."""
        return f"{PROG}: " + "; ".join(d.summary() for d in self.directions)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Forward Ethernet frames between two interfaces, with rate, delay, loss\n"
                    "and jitter applied per direction (a userspace stand-in for netem).\n"
                    "Needs root (raw sockets). Prints 'ready' on stdout once both interfaces\n"
                    "are open, and one line of counters on stderr when stopped by SIGTERM\n"
                    "or SIGINT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example:\n  python -m netlab.linkemu_bridge --a e0 --b e1 \\\n'
               '      --a-to-b "rate=5mbit,delay=50ms,loss=1%,seed=1" '
               '--b-to-a "rate=5mbit,delay=50ms"')
    parser.add_argument("--a", required=True, metavar="IFNAME", help="first interface")
    parser.add_argument("--b", required=True, metavar="IFNAME", help="second interface")
    parser.add_argument("--a-to-b", default="", metavar="SPEC",
                        help=f"impairments of frames from a to b: {SPEC_HELP.replace('%', '%%')}. "
                             "Default: none")
    parser.add_argument("--b-to-a", default="", metavar="SPEC",
                        help="impairments of frames from b to a, same form. Default: none")
    parser.add_argument("--priority", choices=PRIORITIES, default="realtime",
                        help="CPU scheduling of this process, so that frames leave on time on "
                             "a busy host: realtime (SCHED_FIFO, low priority), high (nice -10) "
                             "or normal; falls back to the next when not permitted. "
                             "Default: realtime")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: parse, open both interfaces, forward until signalled."""
    args = _parser().parse_args(argv)
    specs: dict[str, LinkParams] = {}
    for flag, text in (("--a-to-b", args.a_to_b), ("--b-to-a", args.b_to_a)):
        try:
            specs[flag] = parse_spec(text)
        except ValueError as exc:
            print(f"{PROG}: error: {flag}: {exc}", file=sys.stderr)
            return 2
    if args.a == args.b:
        print(f"{PROG}: error: --a and --b must be different interfaces", file=sys.stderr)
        return 2
    sockets: list[socket.socket] = []
    try:
        for ifname in (args.a, args.b):
            try:
                sockets.append(open_interface(ifname))
            except OSError as exc:
                print(f"{PROG}: error: cannot open interface {ifname!r}: {exc.strerror or exc}"
                      + (" (needs root)" if isinstance(exc, PermissionError) else ""),
                      file=sys.stderr)
                return 1
        sock_a, sock_b = sockets
        bridge = Bridge([Direction("a->b", sock_a, sock_b, LinkModel(specs["--a-to-b"])),
                         Direction("b->a", sock_b, sock_a, LinkModel(specs["--b-to-a"]))])
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _signum, _frame: bridge.stop())
        got = raise_priority(args.priority)
        print(f"{PROG}: ready a={args.a} b={args.b} priority={got}", flush=True)
        bridge.run()
        print(bridge.summary(), file=sys.stderr, flush=True)
        return 0
    finally:
        for sock in sockets:
            sock.close()


if __name__ == "__main__":
    sys.exit(main())
