"""The controller's intended state, kept in SQLite so a restart loses nothing.

Fast-path flows, forwarded-mode QUIC mappings and stream ranks live here; the switch
entries are derived from them (controller/entities.py), so re-installing a restarted
switch is "write what the store says". Every operation is idempotent.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS flows (
    flow_id     INTEGER PRIMARY KEY,
    client      TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    client_port INTEGER NOT NULL,
    target_addr TEXT NOT NULL,
    target_port INTEGER NOT NULL,
    proxy_port  INTEGER NOT NULL UNIQUE,
    UNIQUE (client_addr, client_port, target_addr, target_port)
);
CREATE TABLE IF NOT EXISTS streams (
    client   TEXT NOT NULL,
    src_addr TEXT NOT NULL,
    dst_addr TEXT NOT NULL,
    src_port INTEGER NOT NULL,
    dst_port INTEGER NOT NULL,
    dscp     INTEGER NOT NULL,
    rank     INTEGER NOT NULL,
    PRIMARY KEY (src_addr, dst_addr, src_port, dst_port, dscp)
);
CREATE TABLE IF NOT EXISTS quic_mappings (
    client       TEXT NOT NULL,
    direction    TEXT NOT NULL,
    src_addr     TEXT NOT NULL,
    src_port     INTEGER NOT NULL,
    dst_addr     TEXT NOT NULL,
    dst_port     INTEGER NOT NULL,
    dcid         BLOB NOT NULL,
    out_src_addr TEXT NOT NULL,
    out_src_port INTEGER NOT NULL,
    out_dst_addr TEXT NOT NULL,
    out_dst_port INTEGER NOT NULL,
    new_dcid     BLOB NOT NULL,
    rank         INTEGER NOT NULL,
    tunnel       TEXT NOT NULL,
    PRIMARY KEY (src_addr, src_port, dst_addr, dst_port, dcid)
);
CREATE INDEX IF NOT EXISTS quic_mappings_by_dcid ON quic_mappings (dst_addr, dst_port, dcid);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class IntentError(Exception):
    """An operation the intended state refuses; `code` is a gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FlowIntent:
    flow_id: int
    client: str
    client_addr: str
    client_port: int
    target_addr: str
    target_port: int
    proxy_port: int


@dataclass(frozen=True)
class StreamIntent:
    client: str
    src_addr: str
    dst_addr: str
    src_port: int  # 0: any
    dst_port: int  # 0: any
    dscp: int      # -1: any
    rank: int

    @property
    def key(self) -> tuple[str, str, int, int, int]:
        return (self.src_addr, self.dst_addr, self.src_port, self.dst_port, self.dscp)


@dataclass(frozen=True)
class QuicMappingIntent:
    """One forwarded-mode mapping (draft-ietf-masque-quic-proxy): a short header arriving on
    (src, dst) with `dcid` leaves as (out_src, out_dst) with `new_dcid`, at `rank`."""

    client: str        # the controller client (a proxy) that installed it
    direction: str     # "to_target" or "to_client"
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
    tunnel: str        # the request stream it belongs to, for people

    @property
    def key(self) -> tuple[str, int, str, int, bytes]:
        return (self.src_addr, self.src_port, self.dst_addr, self.dst_port, self.dcid)

    @property
    def masque_client(self) -> str:
        """The address of the MASQUE client this mapping serves (the policy's bound)."""
        return self.src_addr if self.direction == "to_target" else self.out_dst_addr


class IntentStore:
    """Flows, streams and settings in one SQLite file (":memory:" for tests)."""

    def __init__(self, path: Path | str, proxy_ports: tuple[int, int]) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.proxy_ports = proxy_ports

    # -- flows --------------------------------------------------------------------------------
    def open_flow(self, client: str, client_addr: str, client_port: int, target_addr: str,
                  target_port: int) -> FlowIntent:
        """The flow for this 4-tuple, made if new (idempotent)."""
        row = self.db.execute(
            "SELECT * FROM flows WHERE client_addr=? AND client_port=? AND target_addr=? "
            "AND target_port=?", (client_addr, client_port, target_addr, target_port)).fetchone()
        if row is not None:
            flow = FlowIntent(*row)
            if flow.client != client:
                raise IntentError("PERMISSION_DENIED", "this flow belongs to another client")
            return flow
        used = {r[0] for r in self.db.execute("SELECT proxy_port FROM flows")}
        first, last = self.proxy_ports
        port = next((p for p in range(first, last + 1) if p not in used), None)
        if port is None:
            raise IntentError("RESOURCE_EXHAUSTED",
                              f"all proxy ports {first}-{last} are allocated")
        flow_id = (self.db.execute("SELECT MAX(flow_id) FROM flows").fetchone()[0] or 0) + 1
        flow = FlowIntent(flow_id, client, client_addr, client_port, target_addr, target_port,
                          port)
        self.db.execute("INSERT INTO flows VALUES (?,?,?,?,?,?,?)", tuple(flow.__dict__.values()))
        return flow

    def flow(self, flow_id: int) -> FlowIntent | None:
        row = self.db.execute("SELECT * FROM flows WHERE flow_id=?", (flow_id,)).fetchone()
        return None if row is None else FlowIntent(*row)

    def close_flow(self, flow_id: int) -> FlowIntent | None:
        """Remove a flow; the removed flow, or None if there was none (idempotent)."""
        flow = self.flow(flow_id)
        if flow is not None:
            self.db.execute("DELETE FROM flows WHERE flow_id=?", (flow_id,))
        return flow

    def flows(self) -> list[FlowIntent]:
        return [FlowIntent(*r) for r in self.db.execute("SELECT * FROM flows ORDER BY flow_id")]

    # -- streams ------------------------------------------------------------------------------
    def put_stream(self, stream: StreamIntent) -> StreamIntent | None:
        """Insert or update; the previous version, if any."""
        old = self.stream(stream.key)
        if old is not None and old.client != stream.client:
            raise IntentError("PERMISSION_DENIED", "this stream belongs to another client")
        self.db.execute("INSERT OR REPLACE INTO streams VALUES (?,?,?,?,?,?,?)",
                        (stream.client, *stream.key, stream.rank))
        return old

    def stream(self, key: tuple[str, str, int, int, int]) -> StreamIntent | None:
        row = self.db.execute(
            "SELECT * FROM streams WHERE src_addr=? AND dst_addr=? AND src_port=? AND "
            "dst_port=? AND dscp=?", key).fetchone()
        return None if row is None else StreamIntent(*row)

    def remove_stream(self, key: tuple[str, str, int, int, int]) -> StreamIntent | None:
        old = self.stream(key)
        if old is not None:
            self.db.execute("DELETE FROM streams WHERE src_addr=? AND dst_addr=? AND "
                            "src_port=? AND dst_port=? AND dscp=?", key)
        return old

    def streams(self) -> list[StreamIntent]:
        return [StreamIntent(*r) for r in self.db.execute("SELECT * FROM streams ORDER BY rowid")]

    # -- forwarded-mode QUIC mappings -----------------------------------------------------------
    def put_quic_mapping(self, mapping: QuicMappingIntent) -> QuicMappingIntent | None:
        """Insert or replace; the previous mapping with this key, if any."""
        old = self.quic_mapping(mapping.key)
        if old is not None and old.client != mapping.client:
            raise IntentError("PERMISSION_DENIED", "this mapping belongs to another client")
        self.db.execute("INSERT OR REPLACE INTO quic_mappings VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", tuple(mapping.__dict__.values()))
        return old

    def quic_mapping(self, key: tuple[str, int, str, int, bytes]) -> QuicMappingIntent | None:
        row = self.db.execute(
            "SELECT * FROM quic_mappings WHERE src_addr=? AND src_port=? AND dst_addr=? AND "
            "dst_port=? AND dcid=?", key).fetchone()
        return None if row is None else QuicMappingIntent(*row)

    def remove_quic_mapping(self, key: tuple[str, int, str, int, bytes]
                            ) -> QuicMappingIntent | None:
        old = self.quic_mapping(key)
        if old is not None:
            self.db.execute("DELETE FROM quic_mappings WHERE src_addr=? AND src_port=? AND "
                            "dst_addr=? AND dst_port=? AND dcid=?", key)
        return old

    def count_quic_mappings(self, masque_client: str,
                            besides: tuple[str, int, str, int, bytes]) -> int:
        """How many mappings serve `masque_client` (see QuicMappingIntent.masque_client),
        the one with key `besides` not counted."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM quic_mappings WHERE (CASE direction WHEN 'to_target' THEN "
            "src_addr ELSE out_dst_addr END) = ? AND NOT (src_addr=? AND src_port=? AND "
            "dst_addr=? AND dst_port=? AND dcid=?)", (masque_client, *besides)).fetchone()
        return int(row[0])

    def dcid_in_use(self, dst_addr: str, dst_port: int, dcid: bytes) -> bool:
        """Whether any mapping matches packets to dst_addr:dst_port with this DCID."""
        return self.db.execute(
            "SELECT 1 FROM quic_mappings WHERE dst_addr=? AND dst_port=? AND dcid=? LIMIT 1",
            (dst_addr, dst_port, dcid)).fetchone() is not None

    def quic_mappings(self) -> list[QuicMappingIntent]:
        return [QuicMappingIntent(*r)
                for r in self.db.execute("SELECT * FROM quic_mappings ORDER BY rowid")]

    # -- settings -----------------------------------------------------------------------------
    def setting(self, key: str, default: str) -> str:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings VALUES (?,?)", (key, value))

    def close(self) -> None:
        self.db.close()
