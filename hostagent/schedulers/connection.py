"""The one place a discipline is plugged into aioquic.

aioquic (1.0 to 1.7) builds each packet of application data in
`QuicConnection._write_application`, which walks `self._streams_queue` and lets
every stream in turn put as much data as fits into the packet; afterwards it
moves the streams that sent to the back (round robin per packet). This module
makes `_streams_queue` a property: the getter runs before every packet is
built, and puts the streams the discipline selects at the head of the stored
list (in place, so aioquic's own appends still land in it); the setter stores
aioquic's list. aioquic's rotation still happens, but the getter re-arranges
the list before the next packet, so each packet follows the discipline.

aioquic internals relied on, proven by the frame-order tests for
`aioquic>=1.0,<1.8`: `QuicConnection._streams_queue` (read before each packet,
assigned after it), `QuicStream.sender._pending` (byte ranges not yet sent,
including retransmissions), `QuicStream.sender.highest_offset`,
`QuicStream.sender.buffer_is_empty`, `reset_pending`, `QuicStream.is_blocked`,
and `QuicConnection._max_datagram_size`.

Unidirectional streams the application never registered (HTTP/3 control and
QPACK streams: a few bytes that must not wait behind data) go first whatever
the discipline, and so does a pending RESET_STREAM. Expired deadlines are reset through the public
`reset_stream()` just before `datagrams_to_send()` builds packets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.connection import QuicConnection
from aioquic.quic.stream import QuicStream

from hostagent.schedulers.disciplines import StreamMeta, StreamScheduler, make_scheduler

#: RESET_STREAM error code for a stream dropped because its deadline passed
#: (application-defined; chosen in the reserved-for-applications space).
DEADLINE_EXPIRED = 0x4D50  # "MP"


def pending_bytes(stream: QuicStream) -> int:
    """Bytes (new or to retransmit) the stream could put into a packet now."""
    sender = stream.sender
    if sender.reset_pending:
        return 1
    if stream.is_blocked or sender.buffer_is_empty:
        return 0
    total = sum(len(r) for r in sender._pending)
    return total if total > 0 else 1  # only a FIN to send


class _StreamsView:
    """`SendView` over a connection's live streams (and ids reserved by `open_stream`)."""

    __slots__ = ("streams", "reserved")

    def __init__(self, streams: dict[int, QuicStream], reserved: set[int]) -> None:
        self.streams = streams
        self.reserved = reserved

    def pending(self, stream_id: int) -> int | None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return 0 if stream_id in self.reserved else None
        return pending_bytes(stream)

    def progress(self, stream_id: int) -> int:
        stream = self.streams.get(stream_id)
        return 0 if stream is None else stream.sender.highest_offset


class ScheduledQuicConnection(QuicConnection):
    """A `QuicConnection` whose stream data is sent in the order of a `StreamScheduler`."""

    def __init__(self, *args: Any, scheduler: StreamScheduler | str = "aioquic-default",
                 **kwargs: Any) -> None:
        self.scheduler = make_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
        self._mp_queue: list[QuicStream] = []
        self._mp_reserved: set[int] = set()  # registered by open_stream, not yet created
        self._mp_assigned = False  # aioquic has just stored the list (see the getter)
        self.expired_streams: list[int] = []
        super().__init__(*args, **kwargs)
        self._mp_assigned = False

    @classmethod
    def adopt(cls, connection: QuicConnection,
              scheduler: StreamScheduler | str) -> ScheduledQuicConnection:
        """Turn a fresh `QuicConnection` made by aioquic's `connect()`/`serve()` into this
        class, in place, before it sends anything (those helpers offer no class hook)."""
        if isinstance(connection, ScheduledQuicConnection):
            raise TypeError("connection is already scheduled")
        queue = connection.__dict__.pop("_streams_queue")
        connection.__class__ = cls
        adopted: ScheduledQuicConnection = connection  # type: ignore[assignment]
        adopted.scheduler = make_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
        adopted._mp_queue = queue
        adopted._mp_reserved = set()
        adopted._mp_assigned = False
        adopted.expired_streams = []
        return adopted

    # -- the hook ---------------------------------------------------------------------------
    @property  # type: ignore[override]
    def _streams_queue(self) -> list[QuicStream]:
        queue = self._mp_queue
        if self._mp_assigned:
            # aioquic reads the list once more right after storing it (to append the
            # streams that sent): arranged a moment ago, before it stored it
            self._mp_assigned = False
        elif self.scheduler.reorders and queue:
            self._arrange(queue)
        return queue

    @_streams_queue.setter
    def _streams_queue(self, value: list[QuicStream]) -> None:
        self._mp_queue = value
        self._mp_assigned = True

    def _arrange(self, queue: list[QuicStream]) -> None:
        # The getter also runs inside aioquic's bookkeeping, when the streams that just
        # sent are briefly out of the list, so liveness comes from `_streams`, not `queue`.
        # This runs two times per packet over every stream: the checks are inlined.
        scheduler = self.scheduler
        registered = scheduler.meta
        activate = scheduler.activate
        streams: dict[int, QuicStream] = self._streams
        reserved = self._mp_reserved
        control: list[QuicStream] = []
        for stream in queue:
            sender = stream.sender
            if sender.reset_pending:  # a RESET_STREAM must not wait behind data
                control.append(stream)
                continue
            if sender.buffer_is_empty or stream.is_blocked:  # pending_bytes(stream) == 0
                continue
            stream_id = cast(int, stream.stream_id)  # aioquic's Optional: always set here
            if stream_id not in registered:
                if stream_id & 2:  # unregistered unidirectional: HTTP/3 control, QPACK
                    control.append(stream)
                    continue
                scheduler.register(stream_id, StreamMeta())
            activate(stream_id)
        if reserved:
            reserved.difference_update([s for s in reserved if s in streams])
        if len(registered) > len(streams) + len(reserved):  # aioquic discarded some
            for stream_id in [s for s in registered if s not in streams and s not in reserved]:
                scheduler.forget(stream_id)
        chosen = scheduler.select(_StreamsView(streams, reserved), 2 * self._max_datagram_size)
        head = control + [streams[s] for s in chosen
                          if streams[s] in queue and streams[s] not in control]
        if not head or queue[:len(head)] == head:
            return
        for stream in head:  # a few streams: list.remove is a C loop
            queue.remove(stream)
        queue[:0] = head

    # -- application API --------------------------------------------------------------------
    def open_stream(self, meta: StreamMeta | None = None, is_unidirectional: bool = False) -> int:
        """Reserve the next stream id with its scheduling metadata; send on it as usual."""
        stream_id = self.get_next_available_stream_id(is_unidirectional=is_unidirectional)
        if stream_id not in self._streams:
            self._mp_reserved.add(stream_id)
        self.scheduler.register(stream_id, meta or StreamMeta())
        return stream_id

    def set_stream_meta(self, stream_id: int, meta: StreamMeta) -> None:
        """Declare or change a stream's metadata (e.g. for a peer-initiated stream)."""
        self.scheduler.register(stream_id, meta)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        for stream_id in self.scheduler.expired(now):
            stream = self._streams.get(stream_id)
            if stream is not None and not stream.sender.is_finished:
                self.reset_stream(stream_id, DEADLINE_EXPIRED)
                self.expired_streams.append(stream_id)
        return super().datagrams_to_send(now)


def scheduled_protocol(protocol: type[QuicConnectionProtocol],
                       scheduler: Callable[[], StreamScheduler]) -> Callable[..., Any]:
    """A `create_protocol` for aioquic's `connect()`/`serve()` whose connections are
    scheduled; `scheduler` makes one discipline per connection."""

    def create(connection: QuicConnection, **kwargs: Any) -> QuicConnectionProtocol:
        return protocol(ScheduledQuicConnection.adopt(connection, scheduler()), **kwargs)

    return create
