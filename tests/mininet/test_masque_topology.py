"""The Mininet MASQUE topology (topologies/masque_proxy.py) comes up, works, and goes away.

Needs root and Mininet (`mininet` marker: skipped with the reason otherwise). The
client's and t1's access links carry impairments of their own, so on a kernel without
netem a userspace emulator node sits in each, and with netem Mininet's TCIntf does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.linkemu import parse_spec
from tests.mininet.leftovers import assert_all_gone
from topologies import masque_topology as mq

pytestmark = [pytest.mark.mininet, pytest.mark.slow, pytest.mark.timeout(120)]
REPO = Path(__file__).resolve().parents[2]


def test_topology_pings_runs_the_fast_path_and_leaves_nothing() -> None:
    """Up with impaired client and t1 links, pingall, a fast-path echo with counters, clean
    stop."""
    if mq.STATE_FILE.exists():
        pytest.skip(f"{mq.STATE_FILE} exists: another topology runs, or run --cleanup")
    topo = mq.MasqueTopology(target="soft", targets=2, link=parse_spec("delay=5ms"),
                             host_links={"t1": parse_spec("delay=10ms")})
    pids: dict[str, int] = {}
    inodes: set[int] = set()
    try:
        topo.start()
        pids, inodes = topo.pids(), topo.netns_inodes()
        assert topo.link_how in ("netem", "userspace")
        assert {"mp-controller", "mp-proxy", "mp-target t1", "mp-target t2",
                "switch mps1", "shell client"} <= set(pids)
        assert len(inodes) >= 4  # client, proxy, t1, t2 (and the emulator, if any)
        assert topo.ping_all() == 0
        result = topo.demo(count=5)
        pids["mp-client"] = topo.processes["mp-client"].proc.pid
        print(f"link {topo.link_how}; {result}")
        assert result.exit_code == 0, result.lines
        assert result.granted, result.lines
        # each link's own delay: 2 x (5 ms client + 10 ms t1) emulated
        assert len(result.rtts_ms) == 5 and min(result.rtts_ms) >= 30
        assert result.shims_sent > 0 and result.shims_received > 0
        assert result.decap[0] > 0 and result.encap[0] > 0, result
        queues = [c for sw in result.stats["switches"] for c in sw["counters"]
                  if c["name"] == "queue_enqueues"]
        assert sum(int(c.get("packets", 0)) for c in queues) > 0
    finally:
        assert topo.stop() == []
    assert_all_gone(pids, inodes)


def _start_script(*flags: str) -> tuple[subprocess.Popen[str], dict[str, int], set[int]]:
    """masque_proxy.py with `flags`, once its topology is up: the process, the PIDs its
    PID file records and the network namespaces of its hosts (by inode)."""
    if mq.STATE_FILE.exists():
        pytest.skip(f"{mq.STATE_FILE} exists: another topology runs, or run --cleanup")
    proc = subprocess.Popen([sys.executable, str(REPO / "topologies" / "masque_proxy.py"),
                             *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("*** topology up"):
            break
    else:
        pytest.fail(f"the topology did not come up (exit {proc.wait()})")
    state = json.loads(mq.STATE_FILE.read_text())
    pids = {label: pid for label, (pid, _) in state["pids"].items()}
    inodes = {os.stat(f"/proc/{pid}/ns/net").st_ino for label, pid in pids.items()
              if label.startswith("shell ") and label != "shell mps1"}
    return proc, pids, inodes


def test_ctrl_c_during_the_demo_cleans_up() -> None:
    """SIGINT to the script as soon as the topology is up: exit 130 and nothing left."""
    proc, pids, inodes = _start_script("--targets", "1", "--count", "50")
    try:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(rest)
    assert proc.returncode == 130, rest
    assert "interrupted, cleaning up" in rest
    assert "cleanup:" not in rest, rest
    assert {"mp-controller", "mp-proxy", "switch mps1"} <= set(pids)
    assert_all_gone(pids, inodes)


def test_the_next_run_removes_what_a_killed_run_left() -> None:
    """SIGKILL to the script at Mininet's CLI (nothing of it cleans up), then the script
    again: it removes every daemon, emulator, node and link the killed run left (found
    in its PID file), runs its demonstration and leaves nothing itself. (`--cleanup` does
    the same removal and then Mininet's `mn -c`, which is not selective: it kills every
    Mininet node and deletes /tmp/*.log on the machine, so the suite does not run it.)"""
    proc, pids, inodes = _start_script("--cli", "--link", "delay=5ms")
    proc.kill()
    proc.wait()
    assert mq.STATE_FILE.exists()
    assert {"mp-controller", "mp-proxy", "switch mps1", "emulator mpe1"} <= set(pids), pids
    done = subprocess.run([sys.executable, str(REPO / "topologies" / "masque_proxy.py"),
                           "--count", "1"], capture_output=True, text=True, cwd=REPO,
                          timeout=90)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "sent SIGTERM to mp-proxy" in done.stdout + done.stderr
    assert "demo OK" in done.stdout
    assert_all_gone(pids, inodes)
