"""How every command of the project starts and stops, in one place: its log format, running
until SIGINT or SIGTERM asks it to stop (so a daemon closes its sockets and reports its
counters instead of dying mid-write), and a guarded run for scripts that build something
that must be removed whatever happens (a topology, namespaces).

Console scripts (mp-switch, mp-controller, mp-ctl, mp-proxy, mp-client, mp-target), the
experiments and the topology scripts all use it, so Ctrl-C, `kill`, and errors behave
the same everywhere: a one-line message on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TypeVar

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: int | str = logging.INFO, fmt: str = LOG_FORMAT,
                  filename: str | None = None) -> None:
    """The project's log lines (time, logger, level, message) at `level`, on stderr or
    appended to `filename`."""
    if isinstance(level, str):
        level = level.upper()
    logging.basicConfig(level=level, format=fmt, filename=filename)


def wait_until_signalled() -> None:
    """Block this (main) thread until SIGINT or SIGTERM: for daemons whose work runs in
    threads (the built-in switch)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def run_until_signalled(serve: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """`asyncio.run(serve(stop))`, where `stop` is set on SIGINT or SIGTERM; its result."""
    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await serve(stop)

    return asyncio.run(main())


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_signals() -> None:
    """Make SIGTERM and SIGHUP raise SystemExit(128 + signal) in the main thread, as
    Ctrl-C raises KeyboardInterrupt: the `with` blocks and `finally` clauses of a script
    that built namespaces and started processes (the experiments) unwind and remove them,
    instead of the process dying and leaving them behind."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)


def run_guarded(prog: str, body: Callable[[], int], cleanup: Callable[[], object]) -> int:
    """`body()`'s exit code, with `cleanup()` run whatever happens.

    SIGTERM and SIGHUP end the body like Ctrl-C (exit 130, or 128+signal); an error is
    one line on stderr (exit 1); a second Ctrl-C does not interrupt the cleanup; a
    cleanup that returns something true (e.g. a list of what it could not remove) makes
    the exit code non-zero.
    """
    exit_on_signals()
    # Ctrl-C (or kill -INT) cleans up even when this was started with SIGINT ignored (a
    # background job of a shell without job control), where Python leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        code = body()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted, cleaning up", file=sys.stderr)
        code = 130
    except SystemExit as exc:
        print(f"\n{prog}: stopped by a signal, cleaning up", file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - one line for people, then the cleanup
        print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            print("*** stopping and removing everything", flush=True)
            if cleanup():
                code = code or 1
        finally:
            signal.signal(signal.SIGINT, previous)
    return code


def no_options(prog: str, doc: str | None, argv: list[str] | None = None) -> None:
    """The command line of a command that takes no options: `--help` prints `doc` (the
    module's docstring) and exits 0; any argument is a one-line error (exit 2)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
