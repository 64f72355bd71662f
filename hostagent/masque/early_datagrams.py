"""HTTP Datagrams that reach the proxy before their request's tunnel exists.

A client may send its first UDP payloads right behind its CONNECT-UDP request, before the
response (RFC 9298 section 5: "clients MAY optimistically start sending UDP packets in
HTTP Datagrams before receiving the response"); picoquic's picomask client does exactly
that with an inner connection's Initial packet. The proxy decides on a request
asynchronously (it may wait for the client's SETTINGS, bind a socket, ask a controller),
and a datagram can even overtake the request's HEADERS. RFC 9297 section 2.1 lets the
receiver drop such a datagram or buffer it "on the order of a round trip"; dropping costs
the inner connection a retransmission timeout on its first flight, so the proxy keeps a
few. This module is the bounded buffer (sans-I/O: the caller passes the time).
"""

from __future__ import annotations

from collections import deque

#: Datagrams buffered per outer connection, over all its pending requests.
MAX_EARLY_DATAGRAMS = 32
#: Seconds a buffered datagram waits for its tunnel (longer than the proxy's wait for the
#: client's SETTINGS, `proxy.SETTINGS_WAIT`, since admission may include it).
EARLY_DATAGRAM_TTL = 5.0


class EarlyDatagrams:
    """A bounded, time-limited buffer of HTTP Datagram payloads keyed by request stream."""

    def __init__(self, limit: int = MAX_EARLY_DATAGRAMS, ttl: float = EARLY_DATAGRAM_TTL) -> None:
        self.limit = limit
        self.ttl = ttl
        self._items: deque[tuple[float, int, bytes]] = deque()  # (arrival, stream, payload)
        #: datagrams refused because the buffer was full, and dropped because they expired
        self.overflowed = self.expired = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, stream_id: int, payload: bytes, now: float) -> bool:
        """Keep `payload` (the HTTP Datagram after its quarter stream ID) for `stream_id`;
        False when the buffer is full (the caller drops it)."""
        self._expire(now)
        if len(self._items) >= self.limit:
            self.overflowed += 1
            return False
        self._items.append((now, stream_id, payload))
        return True

    def take(self, stream_id: int, now: float) -> list[bytes]:
        """The payloads kept for `stream_id`, oldest first, removed from the buffer."""
        self._expire(now)
        taken = [p for _, sid, p in self._items if sid == stream_id]
        if taken:
            self._items = deque(item for item in self._items if item[1] != stream_id)
        return taken

    def discard(self, stream_id: int) -> int:
        """Forget what was kept for `stream_id` (its request was refused); how many."""
        before = len(self._items)
        self._items = deque(item for item in self._items if item[1] != stream_id)
        return before - len(self._items)

    def _expire(self, now: float) -> None:
        while self._items and now - self._items[0][0] > self.ttl:
            self._items.popleft()
            self.expired += 1
