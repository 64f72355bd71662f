"""The Mininet LLM serving topology (topologies/llm_serving.py) comes up, serves, goes away.

Needs root and Mininet (`mininet` marker: skipped with the reason otherwise).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from topologies import llm_serving as ls
from topologies.linkemu import parse_spec

pytestmark = [pytest.mark.mininet, pytest.mark.slow, pytest.mark.timeout(120)]
#: command lines of processes only this topology runs (switch ports, emulator, node shells)
OURS = re.compile(r"mls1-eth|mpe11-eth|mininet:(mls1|mpe11|frontend|backend)\b"
                  r"|mp-mininet-llm-")


def netns_inodes_in_use() -> set[int]:
    """The network namespaces any process is in, by inode."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
                out.add(os.stat(entry / "ns" / "net").st_ino)
    return out


def our_processes() -> list[str]:
    """Command lines of running processes that match our name patterns."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if OURS.search(cmd):
                found.append(f"{entry.name}: {cmd.strip()}")
    return found


def test_llm_topology_serves_every_request_and_leaves_nothing() -> None:
    """Up with the emulated front-end link, pingall, 6 requests all answered, clean stop."""
    from topologies.mininet_p4 import process_alive, root_links

    if ls.STATE_FILE.exists():
        pytest.skip(f"{ls.STATE_FILE} exists: another topology runs, or run --cleanup")
    topo = ls.LlmTopology(target="soft", link=parse_spec(ls.DEFAULT_LINK), scheduler="edf")
    pids: dict[str, int] = {}
    inodes: set[int] = set()
    try:
        topo.start()
        pids, inodes = topo.pids(), topo.netns_inodes()
        assert topo.link_how in ("netem", "userspace")
        assert {"mp-controller", "llm-backend", "switch mls1", "shell frontend",
                "shell backend"} <= set(pids)
        assert len(inodes) >= 2
        assert topo.ping_all() == 0
        rows = topo.run_frontend(requests=6, seed=1, timeout=30)
        pids["llm-frontend"] = topo.processes["llm-frontend"].proc.pid
        summary = ls.summarize_rows(rows)
        print(summary)
        assert len(rows) == 6
        assert all(r["latency"] is not None and not r["reset"] for r in rows), rows
        assert sum(s["finished"] for s in summary.values()) == 6
        # 2 x 50 ms emulated delay: no answer can be faster than one RTT
        assert min(r["latency"] for r in rows) >= 0.1
    finally:
        assert topo.stop() == []
    deadline = time.monotonic() + 10  # namespaces go once their last process is reaped
    while time.monotonic() < deadline:
        alive = {label: pid for label, pid in pids.items() if process_alive(pid)}
        left_ns = inodes & netns_inodes_in_use()
        if not alive and not left_ns:
            break
        time.sleep(0.1)
    assert not alive, f"processes still running: {alive}"
    assert not left_ns, f"namespaces still in use: {left_ns}"
    assert root_links(ls.ROOT_LINK_PREFIXES) == []
    assert root_links(("mpe11-",)) == []
    assert our_processes() == []
    assert not ls.STATE_FILE.exists()
    assert not topo.workdir.exists()
