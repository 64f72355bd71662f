"""controller.write_batcher: concurrent switch writes share WriteRequests, never two
updates of one entity in a request, and each caller hears only of its own failures."""

from __future__ import annotations

import asyncio

import pytest
from finsy.grpcutil import GRPCStatusCode
from finsy.p4client import P4ClientError, P4Error
from finsy.proto import p4r

from controller.write_batcher import SwitchWriteError, WriteBatcher


def update(n: int, table: int = 1) -> p4r.Update:
    match = p4r.FieldMatch(field_id=1, exact=p4r.FieldMatch.Exact(value=n.to_bytes(4, "big")))
    return p4r.Update(type=p4r.Update.INSERT, entity=p4r.Entity(
        table_entry=p4r.TableEntry(table_id=table, match=[match])))


class FailedUpdates(P4ClientError):
    """A Write that failed for some updates (finsy builds these from a gRPC error)."""

    def __init__(self, failed: dict[int, str]) -> None:  # noqa: D107 - no super(): no RPC
        Exception.__init__(self, "some updates failed")
        self._details = {i: P4Error(GRPCStatusCode.ALREADY_EXISTS, why, "", 6)
                         for i, why in failed.items()}

    @property
    def details(self) -> dict[int, P4Error]:
        return self._details


class Switch:
    """Records every WriteRequest; a write takes `delay` s; `fail` maps the number of a
    request (0 first) to the updates it fails."""

    def __init__(self, delay: float = 0.01, fail: dict[int, dict[int, str]] | None = None):
        self.requests: list[list[p4r.Update]] = []
        self.delay, self.fail = delay, fail or {}

    async def send(self, updates: list[p4r.Update]) -> None:
        self.requests.append(updates)
        await asyncio.sleep(self.delay)
        failed = self.fail.get(len(self.requests) - 1)
        if failed:
            raise FailedUpdates(failed)


def test_concurrent_writes_share_requests_and_keep_their_order() -> None:
    async def main() -> None:
        switch = Switch()
        batcher = WriteBatcher(switch.send)
        first = asyncio.create_task(batcher.write([update(0)]))
        await asyncio.sleep(0.001)  # the first is in flight alone
        await asyncio.gather(first, *(batcher.write([update(2 * i + 1), update(2 * i + 2)])
                                      for i in range(50)))
        assert [len(r) for r in switch.requests] == [1, 100]
        sent = [u.entity.table_entry.match[0].exact.value for r in switch.requests for u in r]
        assert sent == [n.to_bytes(4, "big") for n in range(101)]
        assert batcher.stats == {"requests": 2, "updates": 101, "groups": 51, "largest": 100}

    asyncio.run(main())


def test_an_entity_already_in_the_request_waits_for_the_next() -> None:
    async def main() -> None:
        switch = Switch()
        batcher = WriteBatcher(switch.send)
        delete = p4r.Update(type=p4r.Update.DELETE, entity=update(7).entity)
        await asyncio.gather(batcher.write([update(7)]), batcher.write([delete]),
                             batcher.write([update(8)]), batcher.write([update(7, table=2)]))
        # the delete of entry 7 may not share a request with its insert; what follows it
        # queues behind it; the same match in another table is another entry
        assert [[(u.type, u.entity.table_entry.table_id) for u in r]
                for r in switch.requests] == [[(1, 1)], [(3, 1), (1, 1), (1, 2)]]

    asyncio.run(main())


def test_requests_hold_at_most_max_updates() -> None:
    async def main() -> None:
        switch = Switch()
        batcher = WriteBatcher(switch.send, max_updates=1000)
        await asyncio.gather(*(batcher.write([update(g * 1000 + i) for i in range(400)])
                               for g in range(5)))
        assert [len(r) for r in switch.requests] == [800, 800, 400]

    asyncio.run(main())


def test_each_caller_gets_only_its_own_failures() -> None:
    async def main() -> None:
        # request 0 holds groups [0, 1] (updates 0-1) and [2, 3] (updates 2-3); update 3
        # (the second group's second) fails
        switch = Switch(fail={0: {3: "entry exists"}})
        batcher = WriteBatcher(switch.send)
        results = await asyncio.gather(batcher.write([update(0), update(1)]),
                                       batcher.write([update(2), update(3)]),
                                       return_exceptions=True)
        assert results[0] is None
        assert isinstance(results[1], SwitchWriteError)
        assert results[1].errors == {1: "ALREADY_EXISTS: entry exists"}
        assert str(results[1]) == "update 1: ALREADY_EXISTS: entry exists"

    asyncio.run(main())


def test_a_whole_request_failing_fails_every_caller_in_it() -> None:
    async def main() -> None:
        async def down(updates: list[p4r.Update]) -> None:
            raise ConnectionError("switch unreachable")

        batcher = WriteBatcher(down)
        results = await asyncio.gather(batcher.write([update(0)]), batcher.write([update(1)]),
                                       return_exceptions=True)
        assert [type(r) for r in results] == [ConnectionError, ConnectionError]
        await batcher.write([])  # nothing to write: no request

    asyncio.run(main())


def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    async def main() -> None:
        switch = Switch(delay=0.05)
        batcher = WriteBatcher(switch.send)
        first = asyncio.create_task(batcher.write([update(0)]))
        await asyncio.sleep(0.001)
        queued = asyncio.create_task(batcher.write([update(1)]))
        other = asyncio.create_task(batcher.write([update(2)]))
        await asyncio.sleep(0.001)
        queued.cancel()
        await asyncio.gather(first, other)
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert [len(r) for r in switch.requests] == [1, 2]  # its update went out anyway

    asyncio.run(main())
