"""The request header the front-end puts at the start of each request stream.

12 bytes, network byte order:

    version (u8) = 1 | class id (u8) | priority (u8) | flags (u8) = 0
    deadline budget in ms from issue (u32) | payload length in bytes (u32)

The back-end reads it to schedule its answer (priority, deadline) and to know
how long the request is. The same header starts each request on the TLS/TCP
baselines, where requests follow each other on one byte stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hostagent.llm.workload import CLASSES, TrafficClass

VERSION = 1
HEADER = struct.Struct("!BBBBII")
HEADER_SIZE = HEADER.size


class MalformedRequest(ValueError):
    """The bytes at the start of a request stream are not a valid header."""


@dataclass(frozen=True)
class RequestHeader:
    class_id: int
    priority: int
    deadline_ms: int
    payload_len: int

    @property
    def cls(self) -> TrafficClass:
        return CLASSES[self.class_id]

    def encode(self) -> bytes:
        return HEADER.pack(VERSION, self.class_id, self.priority, 0, self.deadline_ms,
                           self.payload_len)

    @classmethod
    def decode(cls, data: bytes) -> RequestHeader:
        if len(data) < HEADER_SIZE:
            raise MalformedRequest(f"header needs {HEADER_SIZE} bytes, got {len(data)}")
        version, class_id, priority, flags, deadline_ms, payload_len = HEADER.unpack_from(data)
        if version != VERSION:
            raise MalformedRequest(f"unsupported header version {version}")
        if class_id >= len(CLASSES):
            raise MalformedRequest(f"unknown class id {class_id}")
        if flags:
            raise MalformedRequest(f"reserved flags set: {flags:#x}")
        return cls(class_id, priority, deadline_ms, payload_len)

    @classmethod
    def for_class(cls, traffic_class: TrafficClass) -> RequestHeader:
        return cls(CLASSES.index(traffic_class), traffic_class.priority,
                   round(traffic_class.deadline_s * 1000), traffic_class.size)


def request_bytes(traffic_class: TrafficClass) -> bytes:
    """Header plus payload of one request of `traffic_class`."""
    return RequestHeader.for_class(traffic_class).encode() + bytes(traffic_class.size)
