"""A program run inside a network namespace, waited for until ready, stopped by PID.

Experiments start servers and clients in the namespaces they made; this is the
one way they do it, so every process is accounted for and stopped on exit, on
error and on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType


class ProcessFailed(RuntimeError):
    """The process exited, or never said it was ready; the message has its last output."""


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", module, *args]


class NamespaceProcess:
    """`ip netns exec NS argv...` as a context manager.

    `ready` is a regular expression: `start()` returns once a line of the
    process's stderr (merged with stdout unless `capture_stdout`) matches it.
    """

    def __init__(self, namespace: str, argv: Sequence[str], *, ready: str | None = None,
                 ready_timeout: float = 20.0, capture_stdout: bool = False,
                 name: str | None = None) -> None:
        self.namespace = namespace
        self.argv = list(argv)
        self.ready = re.compile(ready) if ready else None
        self.ready_timeout = ready_timeout
        self.capture_stdout = capture_stdout
        self.name = name or os.path.basename(self.argv[0])
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []  # lines read while waiting for `ready`

    def __enter__(self) -> NamespaceProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, *self.argv], env=env,
            stdout=subprocess.PIPE if self.capture_stdout else subprocess.DEVNULL
            if self.ready is None else subprocess.PIPE,
            stderr=subprocess.PIPE if self.ready or self.capture_stdout else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL)
        if self.ready is not None:
            try:
                self._wait_ready()
            except BaseException:
                self.stop()
                raise

    def _wait_ready(self) -> None:
        assert self.proc is not None and self.ready is not None
        stream = self.proc.stderr
        assert stream is not None
        deadline = time.monotonic() + self.ready_timeout
        with selectors.DefaultSelector() as sel:
            sel.register(stream, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = stream.readline().decode(errors="replace")
                if not line:
                    self.proc.wait(timeout=5)
                    raise ProcessFailed(f"{self.name} exited with {self.proc.returncode} "
                                        f"before it was ready: {self._tail()}")
                self.output.append(line.rstrip())
                if self.ready.search(line):
                    return
        raise ProcessFailed(f"{self.name} not ready after {self.ready_timeout:g} s: "
                            f"{self._tail()}")

    def _tail(self) -> str:
        return " | ".join(self.output[-5:]) or "(no output)"

    def communicate(self, timeout: float) -> tuple[str, str]:
        """Wait for the process to end; its remaining (stdout, stderr). Kills it on timeout."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ProcessFailed(f"{self.name} still running after {timeout:g} s") from None
        return (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; by PID, idempotent."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
