"""Congestion controllers the end-hosts can run, by name, including quic-go's.

aioquic picks its controller by name (`QuicConfiguration.congestion_control_algorithm`):
"reno" (every release this project supports) and "cubic" (newer releases). This module
adds "quic-go-reno", the controller of the quic-go end-hosts the seed thesis ran:
NewReno with an initial window of 32 packets and a loss reduction to 0.7 of the window
(quic-go's internal/congestion/cubic_sender.go: initialCongestionWindow = 32,
renoBeta = 0.7; its sent-packet handler creates it with reno = true). aioquic's own
Reno starts at 10 packets and halves the window on a loss. Importing this module
registers the name.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
from collections.abc import Iterable

from aioquic.quic.congestion.base import (
    K_MINIMUM_WINDOW,
    create_congestion_control,
    register_congestion_control,
)
from aioquic.quic.congestion.reno import RenoCongestionControl
from aioquic.quic.packet_builder import QuicSentPacket

QUIC_GO_RENO = "quic-go-reno"
#: quic-go's initialCongestionWindow, in packets
QUIC_GO_INITIAL_WINDOW = 32
#: quic-go's renoBeta: the window after a loss event, as a share of the window before it
QUIC_GO_LOSS_REDUCTION = 0.7
DEFAULT = "reno"


class QuicGoRenoCongestionControl(RenoCongestionControl):
    """aioquic's NewReno with quic-go's initial window (32 packets) and loss reduction (0.7).

    Slow start, congestion avoidance (one packet per window acknowledged), one reduction
    per recovery period and the collapse to 2 packets on persistent congestion are
    NewReno's in both implementations and stay aioquic's.
    """

    def __init__(self, *, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self.congestion_window = QUIC_GO_INITIAL_WINDOW * max_datagram_size

    def on_packets_lost(self, *, now: float, packets: Iterable[QuicSentPacket]) -> None:
        lost_largest_time = 0.0
        for packet in packets:
            self.bytes_in_flight -= packet.sent_bytes
            lost_largest_time = packet.sent_time or 0.0  # set on every sent packet
        # a loss of a packet sent before the current recovery began is the same event
        if lost_largest_time > self._congestion_recovery_start_time:
            self._congestion_recovery_start_time = now
            self.congestion_window = max(
                int(self.congestion_window * QUIC_GO_LOSS_REDUCTION),
                K_MINIMUM_WINDOW * self._max_datagram_size)
            self.ssthresh = self.congestion_window


register_congestion_control(QUIC_GO_RENO, QuicGoRenoCongestionControl)
with contextlib.suppress(ImportError):  # aioquic registers CUBIC when its module loads
    importlib.import_module("aioquic.quic.congestion.cubic")


def available() -> list[str]:
    """The controller names the installed aioquic (with this module's) can create."""
    names = []
    for name in ("reno", "cubic", QUIC_GO_RENO):
        try:
            create_congestion_control(name, max_datagram_size=1200)
        except Exception:  # aioquic raises a bare Exception for an unknown name
            continue
        names.append(name)
    return names


def check(name: str) -> None:
    """A ValueError naming the choices if `name` is not a controller aioquic can create
    (aioquic itself would only fail when the connection starts)."""
    names = available()
    if name not in names:
        raise ValueError(f"unknown congestion control {name!r}; choose from {', '.join(names)}")


def add_argument(parser: argparse.ArgumentParser, what: str = "the outer connection") -> None:
    """`--congestion-control NAME`, as every end-host command takes it."""
    parser.add_argument("--congestion-control", default=DEFAULT, choices=available(),
                        metavar="NAME",
                        help=f"congestion controller of {what}: {', '.join(available())} "
                        f"({QUIC_GO_RENO}: quic-go's NewReno, initial window "
                        f"{QUIC_GO_INITIAL_WINDOW} packets, window x "
                        f"{QUIC_GO_LOSS_REDUCTION:g} on a loss, as the seed thesis's quic-go "
                        f"end-hosts ran; default {DEFAULT}, aioquic's)")
