from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OpenFlowRequest(_message.Message):
    __slots__ = ("client_addr", "client_port", "target_addr", "target_port")
    CLIENT_ADDR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_PORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDR_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    client_addr: str
    client_port: int
    target_addr: str
    target_port: int
    def __init__(self, client_addr: _Optional[str] = ..., client_port: _Optional[int] = ..., target_addr: _Optional[str] = ..., target_port: _Optional[int] = ...) -> None: ...

class Flow(_message.Message):
    __slots__ = ("flow_id", "client_addr", "client_port", "target_addr", "target_port", "fastpath_addr", "fastpath_port", "proxy_port", "client")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_PORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDR_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    FASTPATH_ADDR_FIELD_NUMBER: _ClassVar[int]
    FASTPATH_PORT_FIELD_NUMBER: _ClassVar[int]
    PROXY_PORT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    flow_id: int
    client_addr: str
    client_port: int
    target_addr: str
    target_port: int
    fastpath_addr: str
    fastpath_port: int
    proxy_port: int
    client: str
    def __init__(self, flow_id: _Optional[int] = ..., client_addr: _Optional[str] = ..., client_port: _Optional[int] = ..., target_addr: _Optional[str] = ..., target_port: _Optional[int] = ..., fastpath_addr: _Optional[str] = ..., fastpath_port: _Optional[int] = ..., proxy_port: _Optional[int] = ..., client: _Optional[str] = ...) -> None: ...

class FlowRef(_message.Message):
    __slots__ = ("flow_id",)
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    flow_id: int
    def __init__(self, flow_id: _Optional[int] = ...) -> None: ...

class FlowList(_message.Message):
    __slots__ = ("flows",)
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[Flow]
    def __init__(self, flows: _Optional[_Iterable[_Union[Flow, _Mapping]]] = ...) -> None: ...

class StreamKey(_message.Message):
    __slots__ = ("src_addr", "dst_addr", "src_port", "dst_port", "dscp")
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    DST_ADDR_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    DSCP_FIELD_NUMBER: _ClassVar[int]
    src_addr: str
    dst_addr: str
    src_port: int
    dst_port: int
    dscp: int
    def __init__(self, src_addr: _Optional[str] = ..., dst_addr: _Optional[str] = ..., src_port: _Optional[int] = ..., dst_port: _Optional[int] = ..., dscp: _Optional[int] = ...) -> None: ...

class Stream(_message.Message):
    __slots__ = ("key", "priority", "deadline_ms", "traffic_class", "rank", "clamped", "client")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_CLASS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    CLAMPED_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    key: StreamKey
    priority: int
    deadline_ms: int
    traffic_class: str
    rank: int
    clamped: bool
    client: str
    def __init__(self, key: _Optional[_Union[StreamKey, _Mapping]] = ..., priority: _Optional[int] = ..., deadline_ms: _Optional[int] = ..., traffic_class: _Optional[str] = ..., rank: _Optional[int] = ..., clamped: bool = ..., client: _Optional[str] = ...) -> None: ...

class StreamList(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[Stream]
    def __init__(self, streams: _Optional[_Iterable[_Union[Stream, _Mapping]]] = ...) -> None: ...

class QuicMapping(_message.Message):
    __slots__ = ("direction", "src_addr", "src_port", "dst_addr", "dst_port", "dcid", "out_src_addr", "out_src_port", "out_dst_addr", "out_dst_port", "new_dcid", "rank", "tunnel", "client")
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    DST_ADDR_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    DCID_FIELD_NUMBER: _ClassVar[int]
    OUT_SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    OUT_SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    OUT_DST_ADDR_FIELD_NUMBER: _ClassVar[int]
    OUT_DST_PORT_FIELD_NUMBER: _ClassVar[int]
    NEW_DCID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    TUNNEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    direction: str
    src_addr: str
    src_port: int
    dst_addr: str
    dst_port: int
    dcid: bytes
    out_src_addr: str
    out_src_port: int
    out_dst_addr: str
    out_dst_port: int
    new_dcid: bytes
    rank: int
    tunnel: str
    client: str
    def __init__(self, direction: _Optional[str] = ..., src_addr: _Optional[str] = ..., src_port: _Optional[int] = ..., dst_addr: _Optional[str] = ..., dst_port: _Optional[int] = ..., dcid: _Optional[bytes] = ..., out_src_addr: _Optional[str] = ..., out_src_port: _Optional[int] = ..., out_dst_addr: _Optional[str] = ..., out_dst_port: _Optional[int] = ..., new_dcid: _Optional[bytes] = ..., rank: _Optional[int] = ..., tunnel: _Optional[str] = ..., client: _Optional[str] = ...) -> None: ...

class QuicMappingList(_message.Message):
    __slots__ = ("mappings",)
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    mappings: _containers.RepeatedCompositeFieldContainer[QuicMapping]
    def __init__(self, mappings: _Optional[_Iterable[_Union[QuicMapping, _Mapping]]] = ...) -> None: ...

class QuicMappingResult(_message.Message):
    __slots__ = ("mapping", "error_code", "error")
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    mapping: QuicMapping
    error_code: str
    error: str
    def __init__(self, mapping: _Optional[_Union[QuicMapping, _Mapping]] = ..., error_code: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class QuicMappingResults(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QuicMappingResult]
    def __init__(self, results: _Optional[_Iterable[_Union[QuicMappingResult, _Mapping]]] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "client", "flows", "streams", "quic_mappings", "opened_seconds_ago")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    QUIC_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    OPENED_SECONDS_AGO_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    client: str
    flows: int
    streams: int
    quic_mappings: int
    opened_seconds_ago: float
    def __init__(self, session_id: _Optional[str] = ..., client: _Optional[str] = ..., flows: _Optional[int] = ..., streams: _Optional[int] = ..., quic_mappings: _Optional[int] = ..., opened_seconds_ago: _Optional[float] = ...) -> None: ...

class SessionList(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionInfo]
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionInfo, _Mapping]]] = ...) -> None: ...

class SchedMode(_message.Message):
    __slots__ = ("mode", "burst_pct", "queue_depth")
    MODE_FIELD_NUMBER: _ClassVar[int]
    BURST_PCT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    mode: str
    burst_pct: int
    queue_depth: int
    def __init__(self, mode: _Optional[str] = ..., burst_pct: _Optional[int] = ..., queue_depth: _Optional[int] = ...) -> None: ...

class CounterValue(_message.Message):
    __slots__ = ("name", "index", "label", "packets", "bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    index: int
    label: str
    packets: int
    bytes: int
    def __init__(self, name: _Optional[str] = ..., index: _Optional[int] = ..., label: _Optional[str] = ..., packets: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class SwitchStats(_message.Message):
    __slots__ = ("switch", "connected", "sched_mode", "counters", "sppifo_bounds", "note", "last_restore_seconds", "burst_pct", "queue_depth", "write_requests", "write_updates")
    SWITCH_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SCHED_MODE_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    SPPIFO_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LAST_RESTORE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BURST_PCT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    WRITE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    WRITE_UPDATES_FIELD_NUMBER: _ClassVar[int]
    switch: str
    connected: bool
    sched_mode: str
    counters: _containers.RepeatedCompositeFieldContainer[CounterValue]
    sppifo_bounds: _containers.RepeatedScalarFieldContainer[int]
    note: str
    last_restore_seconds: float
    burst_pct: int
    queue_depth: int
    write_requests: int
    write_updates: int
    def __init__(self, switch: _Optional[str] = ..., connected: bool = ..., sched_mode: _Optional[str] = ..., counters: _Optional[_Iterable[_Union[CounterValue, _Mapping]]] = ..., sppifo_bounds: _Optional[_Iterable[int]] = ..., note: _Optional[str] = ..., last_restore_seconds: _Optional[float] = ..., burst_pct: _Optional[int] = ..., queue_depth: _Optional[int] = ..., write_requests: _Optional[int] = ..., write_updates: _Optional[int] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("switches",)
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    switches: _containers.RepeatedCompositeFieldContainer[SwitchStats]
    def __init__(self, switches: _Optional[_Iterable[_Union[SwitchStats, _Mapping]]] = ...) -> None: ...

class TableRef(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TableEntryText(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class TableDump(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[TableEntryText]
    def __init__(self, entries: _Optional[_Iterable[_Union[TableEntryText, _Mapping]]] = ...) -> None: ...
