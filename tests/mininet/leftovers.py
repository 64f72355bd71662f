"""What a stopped Mininet topology must not leave behind, shared by the tests of
masque_proxy.py's topology and of what is built on it (llm_serving.py)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from topologies import masque_topology as mq

#: command lines of processes only masque_proxy.py's topology runs (switch ports,
#: emulators, node shells, its work directory)
OURS = re.compile(r"mps1-eth|mpe\d+-eth|mininet:(mps1|mpe\d+)\b|mp-mininet-")


def netns_inodes_in_use() -> set[int]:
    """The network namespaces any process is in, by inode."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
                out.add(os.stat(entry / "ns" / "net").st_ino)
    return out


def our_processes(pattern: re.Pattern[str] = OURS) -> list[str]:
    """Command lines of running processes (not this one) that match `pattern`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if pattern.search(cmd):
                found.append(f"{entry.name}: {cmd.strip()}")
    return found


def assert_all_gone(pids: dict[str, int], inodes: set[int]) -> None:
    """No process of `pids`, no namespace of `inodes`, no link, process or PID file of ours."""
    from topologies.mininet_p4 import process_alive, root_links

    deadline = time.monotonic() + 10  # namespaces go once their last process is reaped
    while time.monotonic() < deadline:
        alive = {label: pid for label, pid in pids.items() if process_alive(pid)}
        left_ns = inodes & netns_inodes_in_use()
        if not alive and not left_ns:
            break
        time.sleep(0.1)
    assert not alive, f"processes still running: {alive}"
    assert not left_ns, f"namespaces still in use: {left_ns}"
    assert root_links(mq.ROOT_LINK_PREFIXES) == []
    assert our_processes() == []
    assert not mq.STATE_FILE.exists()
