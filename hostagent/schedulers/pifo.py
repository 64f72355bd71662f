"""Push-in first-out queues: the data structure behind rank-ordered stream scheduling.

Three implementations with one interface, so the ABS discipline can run on
any of them and the benchmark can compare them on the same operations (insert,
extract the minimum, re-insert):

- `LinearScanPifo`: a Python list kept sorted by scanning it from the head for
  the insertion point; extract is `pop(0)`. O(n) compared items per insert: the
  seed thesis's base ABS ("a sorted list, inserts by scanning it").
- `SortedListPifo`: the same list, the insertion point found by binary search
  (`bisect.insort`): O(log n) comparisons, still an O(n) memory move.
- `HeapPifo`: a binary heap (`heapq`); O(log n) insert and extract. Removal of
  an arbitrary item is lazy (marked, skipped when it surfaces).

Ties are broken by insertion order (a per-queue sequence number), so both give
exactly the same order for the same operations: FCFS within a rank.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Hashable, Iterator
from typing import Protocol, TypeAlias

#: a rank: a number, or a tuple of numbers compared in order (e.g. priority, then FCFS)
Rank: TypeAlias = float | tuple[float, ...]


class Pifo(Protocol):
    """A priority queue of distinct items ordered by (rank, insertion order)."""

    def push(self, item: Hashable, rank: Rank) -> None:
        """Insert `item` with `rank`; smaller ranks leave first. Re-pushing moves it."""

    def pop(self) -> Hashable:
        """Remove and return the item with the smallest rank (IndexError if empty)."""

    def peek(self) -> Hashable:
        """Return the item `pop` would return, without removing it."""

    def remove(self, item: Hashable) -> None:
        """Remove `item` if present."""

    def __contains__(self, item: object) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Hashable]:
        """Items in service order (for inspection and tests, not for the hot path)."""


class SortedListPifo:
    """PIFO as a sorted list: simple, O(n) per insert and extract."""

    def __init__(self) -> None:
        self._entries: list[tuple[Rank, int, Hashable]] = []
        self._key: dict[Hashable, tuple[Rank, int, Hashable]] = {}
        self._seq = itertools.count()

    def push(self, item: Hashable, rank: Rank) -> None:
        if item in self._key:
            self.remove(item)
        entry = (rank, next(self._seq), item)
        self._key[item] = entry
        bisect.insort(self._entries, entry)  # seq is unique: items are never compared

    def pop(self) -> Hashable:
        if not self._entries:
            raise IndexError("pop from an empty PIFO")
        _, _, item = self._entries.pop(0)
        del self._key[item]
        return item

    def peek(self) -> Hashable:
        if not self._entries:
            raise IndexError("peek into an empty PIFO")
        return self._entries[0][2]

    def remove(self, item: Hashable) -> None:
        entry = self._key.pop(item, None)
        if entry is not None:
            del self._entries[bisect.bisect_left(self._entries, entry)]

    def __contains__(self, item: object) -> bool:
        return item in self._key

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        return (item for _, _, item in list(self._entries))


class LinearScanPifo(SortedListPifo):
    """PIFO as a sorted list, insertion point found by a linear scan (the seed's base ABS)."""

    def push(self, item: Hashable, rank: Rank) -> None:
        if item in self._key:
            self.remove(item)
        entry = (rank, next(self._seq), item)
        self._key[item] = entry
        entries = self._entries
        at = len(entries)
        for n, queued in enumerate(entries):  # from the head: FCFS within a rank
            if queued > entry:
                at = n
                break
        entries.insert(at, entry)


class HeapPifo:
    """PIFO as a binary heap: O(log n) insert and extract, lazy removal."""

    def __init__(self) -> None:
        self._heap: list[tuple[Rank, int, Hashable]] = []
        self._live: dict[Hashable, int] = {}  # item -> sequence number of its live entry
        self._seq = itertools.count()

    def push(self, item: Hashable, rank: Rank) -> None:
        seq = next(self._seq)
        self._live[item] = seq  # an older entry of the same item becomes stale
        heapq.heappush(self._heap, (rank, seq, item))

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def pop(self) -> Hashable:
        live, heap = self._live, self._heap
        while heap:
            _, seq, item = heapq.heappop(heap)
            if live.get(item) == seq:
                del live[item]
                return item
        raise IndexError("pop from an empty PIFO")

    def peek(self) -> Hashable:
        self._drop_stale()
        if not self._heap:
            raise IndexError("peek into an empty PIFO")
        return self._heap[0][2]

    def remove(self, item: Hashable) -> None:
        self._live.pop(item, None)
        if len(self._heap) > 2 * len(self._live) + 64:  # keep stale entries bounded
            self._heap = [e for e in self._heap if self._live.get(e[2]) == e[1]]
            heapq.heapify(self._heap)

    def __contains__(self, item: object) -> bool:
        return item in self._live

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Hashable]:
        live = [e for e in self._heap if self._live.get(e[2]) == e[1]]
        return (item for _, _, item in sorted(live, key=lambda e: e[:2]))
