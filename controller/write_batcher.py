"""Group commit: concurrent writes to one switch go out as one P4Runtime WriteRequest.

Every northbound call that changes the intended state ends in a write to each switch. A
proxy opening 100 tunnels at once made 100 writes of one to three updates, one after the
other, each a switch round trip. The batcher sends the first write at once and, while it
is in flight, queues what comes in; the next WriteRequest carries every queued group (up
to `max_updates`). A target may apply a batch's updates in any order (P4Runtime spec,
"Batching and Ordering of Updates"), so a group that touches an entity already in the
batch waits for the next one. Writes use CONTINUE_ON_ERROR: the switch reports failures
per update, and each caller gets only its own (`SwitchWriteError`); the others succeed.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from finsy.p4client import P4ClientError
from finsy.proto import p4r

#: updates in one WriteRequest at most
MAX_UPDATES = 1000


class SwitchWriteError(RuntimeError):
    """Some of one caller's updates failed; the switch's per-update errors, by index into
    that caller's updates."""

    def __init__(self, errors: dict[int, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"update {i}: {why}" for i, why in sorted(errors.items())))


def table_entry_key(te: p4r.TableEntry) -> tuple[int, tuple[bytes, ...], int]:
    """What names a table entry in its table: table, match fields, priority."""
    match = tuple(sorted(m.SerializeToString(deterministic=True) for m in te.match))
    return te.table_id, match, te.priority


def entity_key(update: p4r.Update) -> Hashable:
    """The entity an update touches: a table entry by its key; any other entity by its
    kind alone (conservative: two such updates never share a batch)."""
    kind = update.entity.WhichOneof("entity")
    if kind == "table_entry":
        return table_entry_key(update.entity.table_entry)
    return kind


@dataclass
class _Group:
    updates: list[p4r.Update]
    done: asyncio.Future[None]
    keys: set[Hashable] = field(default_factory=set)


class WriteBatcher:
    """Merges concurrent `write` calls into WriteRequests sent one at a time by `send`."""

    def __init__(self, send: Callable[[list[p4r.Update]], Awaitable[None]],
                 max_updates: int = MAX_UPDATES) -> None:
        self.send = send
        self.max_updates = max_updates
        #: WriteRequests sent, updates in them, callers served, the largest request
        self.stats = {"requests": 0, "updates": 0, "groups": 0, "largest": 0}
        self._queue: collections.deque[_Group] = collections.deque()
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, updates: list[p4r.Update]) -> None:
        """Write `updates` (in a batch with whatever else is queued); SwitchWriteError if
        some of them failed, the transport's error if the request failed as a whole."""
        if not updates:
            return
        group = _Group(updates, asyncio.get_running_loop().create_future(),
                       {entity_key(u) for u in updates})
        self._queue.append(group)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await group.done

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch: list[_Group] = []
                keys: set[Hashable] = set()
                size = 0
                while self._queue:
                    group = self._queue[0]
                    if batch and (size + len(group.updates) > self.max_updates
                                  or keys & group.keys):
                        break
                    batch.append(self._queue.popleft())
                    keys |= group.keys
                    size += len(group.updates)
                await self._send(batch)
        finally:
            self._flusher = None
            while self._queue:  # only when cancelled: nobody will send these
                _settle(self._queue.popleft(), ConnectionError("the switch agent stopped"))

    async def _send(self, batch: list[_Group]) -> None:
        updates = [u for group in batch for u in group.updates]
        self.stats["requests"] += 1
        self.stats["updates"] += len(updates)
        self.stats["groups"] += len(batch)
        self.stats["largest"] = max(self.stats["largest"], len(updates))
        try:
            await self.send(updates)
        except P4ClientError as exc:
            if not exc.details:
                for group in batch:
                    _settle(group, exc)
                return
            first = 0
            for group in batch:
                mine = {i - first: f"{err.canonical_code.name}: {err.message}"
                        for i, err in exc.details.items()
                        if first <= i < first + len(group.updates)}
                _settle(group, SwitchWriteError(mine) if mine else None)
                first += len(group.updates)
        except Exception as exc:  # noqa: BLE001 - every caller hears of it
            for group in batch:
                _settle(group, exc)
        except BaseException:
            for group in batch:
                _settle(group, ConnectionError("the switch agent stopped"))
            raise
        else:
            for group in batch:
                _settle(group, None)


def _settle(group: _Group, error: BaseException | None) -> None:
    if group.done.done():  # the caller was cancelled; its updates went out anyway
        return
    if error is None:
        group.done.set_result(None)
    else:
        group.done.set_exception(error)
