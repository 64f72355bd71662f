"""Proxy sessions: what a running proxy made through the northbound API, so that the
controller can take it back when the proxy goes away without doing so itself.

A proxy opens one `Session` stream while it runs and names that session in the metadata
of its calls (`mp-session: <id>`). The table remembers the flows, stream ranks and QUIC
mappings each session made; removing any of them (from whichever session or client)
forgets it. When the stream ends because the proxy exited, crashed or lost its
connection, the session waits `session_grace_s` for the proxy to come back and resume it
(a new `Session` stream naming it); if none does, `ControllerService.end_session` removes
what is left. Sessions live in memory only: a controller restart ends none of them (the
proxies open new ones), so a restart never removes anything.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from controller.config import ClientConf
from controller.intent import IntentError

#: the gRPC metadata key that names the caller's session
SESSION_METADATA = "mp-session"
#: what a session can hold
KINDS = ("flow", "stream", "quic_mapping")


@dataclass
class ProxySession:
    """One proxy's session: its owner and what it made that is still installed."""

    session_id: str
    client: ClientConf
    opened: float = field(default_factory=time.monotonic)
    held: dict[str, set[object]] = field(default_factory=lambda: {k: set() for k in KINDS})
    #: a proxy's stream is attached now; `ending` waits out the grace period when not
    attached: bool = True
    ending: asyncio.Task[None] | None = None

    def count(self, kind: str) -> int:
        return len(self.held[kind])


class SessionTable:
    """The open sessions, by id."""

    def __init__(self) -> None:
        self.sessions: dict[str, ProxySession] = {}

    def open(self, client: ClientConf) -> ProxySession:
        session = ProxySession(secrets.token_hex(8), client)
        self.sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None, client: ClientConf) -> ProxySession | None:
        """The caller's session (None when the call names none); an error when the name is
        unknown or another client's."""
        if not session_id:
            return None
        session = self.sessions.get(session_id)
        if session is None or session.client.name != client.name:
            raise IntentError("FAILED_PRECONDITION",
                              f"session {session_id!r} is not open for {client.name} (the "
                              "controller restarted, or the session ended): open a new one")
        return session

    def resume(self, session_id: str | None, client: ClientConf) -> ProxySession | None:
        """The detached session `session_id` of `client`, attached again (its removal
        called off); None if there is no such session to resume."""
        session = self.sessions.get(session_id or "")
        if session is None or session.client.name != client.name or session.attached:
            return None
        if session.ending is not None:
            session.ending.cancel()
            session.ending = None
        session.attached = True
        return session

    def close(self, session_id: str) -> ProxySession | None:
        return self.sessions.pop(session_id, None)

    @staticmethod
    def track(session: ProxySession | None, kind: str, key: object) -> None:
        if session is not None:
            session.held[kind].add(key)

    def forget(self, kind: str, key: object) -> None:
        """`key` was removed: no session has to remove it any more."""
        for session in self.sessions.values():
            session.held[kind].discard(key)

    def visible_to(self, client: ClientConf) -> list[ProxySession]:
        return [s for s in self.sessions.values()
                if client.operator or s.client.name == client.name]
