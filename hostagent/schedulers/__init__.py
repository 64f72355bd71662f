"""QUIC stream schedulers for aioquic end-hosts (RR, FCFS, EDF, ABS, PIFO-ABS, ML).

`ScheduledQuicConnection(configuration=..., scheduler="edf")` is a drop-in
`QuicConnection`; give per-stream metadata with `open_stream(StreamMeta(...))`
or `set_stream_meta(stream_id, meta)`.
"""

from hostagent.schedulers.connection import (
    DEADLINE_EXPIRED,
    ScheduledQuicConnection,
    scheduled_protocol,
)
from hostagent.schedulers.disciplines import (
    SCHEDULERS,
    StreamMeta,
    StreamScheduler,
    make_scheduler,
)
from hostagent.schedulers.pifo import HeapPifo, LinearScanPifo, Pifo, SortedListPifo

__all__ = [
    "DEADLINE_EXPIRED",
    "SCHEDULERS",
    "HeapPifo",
    "LinearScanPifo",
    "Pifo",
    "ScheduledQuicConnection",
    "SortedListPifo",
    "StreamMeta",
    "StreamScheduler",
    "make_scheduler",
    "scheduled_protocol",
]
