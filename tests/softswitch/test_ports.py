"""The built-in target's egress choice at a shaped port (bmv2/softswitch/ports.py `choose`):
strict priority among the packets queued by the time the port became free."""

from __future__ import annotations

from collections import deque

from bmv2.softswitch.ports import choose


def queues(*heads: list[float]) -> list[deque]:
    """Priority 0 first, as the port keeps them; each packet is (time queued, name)."""
    return [deque((t, f"p{prio}@{t}") for t in times) for prio, times in enumerate(heads)]


def test_highest_priority_among_those_queued_when_the_port_became_free() -> None:
    qs = queues([1.0], [2.0], [5.0])  # priority 2 arrived after the port was free at 3.0
    assert choose(qs, 3.0) is qs[1]
    assert choose(qs, 6.0) is qs[2]  # all of them were waiting: strict priority
    assert choose(qs, float("inf")) is qs[2]  # an unshaped port: strict priority as it is


def test_an_idle_port_sends_the_first_arrival() -> None:
    qs = queues([7.0], [], [8.0])  # the port was free at 6.0; priority 0 came first
    assert choose(qs, 6.0) is qs[0]


def test_nothing_queued() -> None:
    assert choose(queues([], [], []), 1.0) is None
