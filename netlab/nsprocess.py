"""A program run inside a network namespace, waited for until ready, stopped by PID.

Experiments start servers and clients in the namespaces they made; this is the
one way they do it, so every process is accounted for and stopped on exit, on
error and on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType


class ProcessFailed(RuntimeError):
    """The process exited, or never said it was ready; the message has its last output."""


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", module, *args]


class NamespaceProcess:
    """`ip netns exec NS argv...` (or plain `argv...` when `namespace` is None) as a context
    manager.

    Its stderr (with stdout merged in, unless `capture_stdout`) is read all the time, so a
    chatty process never blocks on a full pipe; the last lines are kept in `output` for
    error messages. `ready` is a regular expression: `start()` returns once a line matches.
    """

    def __init__(self, namespace: str | None, argv: Sequence[str], *, ready: str | None = None,
                 ready_timeout: float = 20.0, capture_stdout: bool = False,
                 name: str | None = None) -> None:
        self.namespace = namespace
        self.argv = list(argv)
        self.ready = re.compile(ready) if ready else None
        self.ready_timeout = ready_timeout
        self.capture_stdout = capture_stdout
        self.name = name or os.path.basename(self.argv[0])
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: deque[str] = deque(maxlen=200)  # last lines of stderr
        self._is_ready = threading.Event()
        self._drain: threading.Thread | None = None

    def __enter__(self) -> NamespaceProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        prefix = ["ip", "netns", "exec", self.namespace] if self.namespace else []
        self.proc = subprocess.Popen(
            prefix + self.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if self.capture_stdout else subprocess.STDOUT)
        self._drain = threading.Thread(target=self._read_stderr, daemon=True,
                                       name=f"{self.name}-stderr")
        self._drain.start()
        if self.ready is not None:
            try:
                self._wait_ready()
            except BaseException:
                self.stop()
                raise

    def _read_stderr(self) -> None:
        assert self.proc is not None
        stream = self.proc.stderr if self.capture_stdout else self.proc.stdout
        assert stream is not None
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            if self.ready is not None and self.ready.search(line):
                self._is_ready.set()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while not self._is_ready.wait(0.05):
            if self.proc.poll() is not None:
                if self._drain is not None:
                    self._drain.join(2)
                raise ProcessFailed(f"{self.name} exited with {self.proc.returncode} "
                                    f"before it was ready: {self._tail()}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{self.name} not ready after {self.ready_timeout:g} s: "
                                    f"{self._tail()}")

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return None if self.proc is None else self.proc.poll()

    def _tail(self, lines: int = 5) -> str:
        return " | ".join(list(self.output)[-lines:]) or "(no output)"

    def communicate(self, timeout: float) -> str:
        """Wait for the process to end; its stdout (with capture_stdout). Kills it on timeout."""
        assert self.proc is not None
        try:
            if self.capture_stdout:
                out, _ = self.proc.communicate(timeout=timeout)
            else:  # stdout is merged into the stream the drain thread reads
                out = None
                self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ProcessFailed(f"{self.name} still running after {timeout:g} s") from None
        if self._drain is not None:
            self._drain.join(2)
        return (out or b"").decode(errors="replace")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; by PID, idempotent."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
            except ProcessLookupError:
                pass
        if self._drain is not None:
            self._drain.join(2)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
