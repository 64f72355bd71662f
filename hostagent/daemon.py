"""What every long-running command of the project does the same way: its log format,
and running until SIGINT or SIGTERM asks it to stop (so it closes its sockets and
reports its counters instead of dying mid-write)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def setup_logging(level: int | str = logging.INFO) -> None:
    """The project's log lines (time, logger, level, message) on stderr at `level`."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def run_until_signalled(serve: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """`asyncio.run(serve(stop))`, where `stop` is set on SIGINT or SIGTERM; its result."""
    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await serve(stop)

    return asyncio.run(main())
