"""The asyncio protocol both ends of the outer (client-proxy) connection build on.

Tunnels queue data from many callbacks in one loop iteration; `kick` coalesces
them into one `transmit()` on the next iteration, so a burst of tunnels sends
full packets instead of one packet per tunnel write.
"""

from __future__ import annotations

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic.connection import END_STATES

from hostagent.schedulers import ScheduledQuicConnection


class OuterProtocol(QuicConnectionProtocol):
    """An outer HTTP/3 connection whose QUIC connection is a `ScheduledQuicConnection`."""

    _kick_pending = False

    @property
    def connection(self) -> ScheduledQuicConnection:
        """The scheduled QUIC connection (the stream scheduler lives there)."""
        return self._quic  # type: ignore[return-value]

    def kick(self) -> None:
        """Send what is queued, once per loop iteration however many tunnels queued data."""
        if not self._kick_pending:
            self._kick_pending = True
            self._loop.call_soon(self._kick_now)

    def _kick_now(self) -> None:
        self._kick_pending = False
        self.transmit()

    def note_forwarded_activity(self) -> None:
        """A forwarded-mode packet passed: it counts as activity for the idle timeout.

        draft-ietf-masque-quic-proxy: forwarded packets SHOULD restart the outer
        connection's idle timer. aioquic has no API for it: push its deadline.
        """
        quic = self._quic
        if (quic._close_at is not None and quic._state not in END_STATES
                and not quic._close_pending):
            quic._close_at = max(quic._close_at, self._loop.time() + quic._idle_timeout())
