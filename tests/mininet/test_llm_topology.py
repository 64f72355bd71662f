"""The LLM serving topology (experiments/llm_serving.py): the LLM back-end on t1 of
masque_proxy.py's topology, the front-end on client through mp-proxy, with the switch's
fast path on and off; then nothing is left behind.

Needs root and Mininet (`mininet` marker: skipped with the reason otherwise).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import llm_serving as ls
from netlab.linkemu import parse_spec
from tests.mininet.leftovers import assert_all_gone
from topologies import masque_topology as mq

pytestmark = [pytest.mark.mininet, pytest.mark.slow, pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]


def _skip_if_busy() -> None:
    if mq.STATE_FILE.exists():
        pytest.skip(f"{mq.STATE_FILE} exists: another topology runs, or run --cleanup")


def test_llm_through_the_proxy_fast_path_on_and_off_leaves_nothing() -> None:
    """Up with the emulated client link, pingall, 6 requests on the fast path (granted,
    one rank per class, answered through the switch), 6 via the proxy, clean stop."""
    _skip_if_busy()
    topo = mq.MasqueTopology(target="soft", link=parse_spec(ls.DEFAULT_LINK), lock_wait=120)
    pids: dict[str, int] = {}
    inodes: set[int] = set()
    try:
        topo.start()
        backend = ls.start_backend(topo, "edf")
        pids, inodes = topo.pids(), topo.netns_inodes()
        assert topo.link_how in ("netem", "userspace")
        assert {"mp-controller", "mp-proxy", "llm back-end edf", "switch mps1",
                "shell client", "shell t1"} <= set(pids)
        assert topo.ping_all() == 0
        on = ls.run_variant(topo, backend, "edf", True, requests=6, timeout=30)
        off = ls.run_variant(topo, backend, "edf", False, requests=6, timeout=30)
        print(ls.format_tables([on, off]))
        assert on.granted and on.flow.startswith("flow "), on.to_dict()
        assert on.stream_ranks == 4  # the tunnel's 5-tuple and one per class DSCP
        assert on.shims_sent > 0 and on.shims_received > 0 and on.via_proxy == 0
        assert not off.granted and off.shims_sent == 0
        for run in (on, off):
            assert run.completed == 6, run.rows
            assert all(not r["reset"] for r in run.rows)
            # 2 x 50 ms emulated delay: no answer can be faster than one RTT
            assert min(r["latency"] for r in run.rows) >= 0.1
        assert on.cpu_per_mb is not None and off.cpu_per_mb is not None
        assert on.cpu_per_mb < off.cpu_per_mb, (on.proxy_cpu_s, off.proxy_cpu_s)
    finally:
        assert topo.stop() == []
    assert_all_gone(pids, inodes)
    assert not topo.workdir.exists()


def test_the_script_runs_both_settings_and_writes_its_results(tmp_path: Path) -> None:
    """`llm_serving.py --requests 3`: exit 0, both settings in the JSON, a PNG, clean stop."""
    _skip_if_busy()
    done = subprocess.run([sys.executable, str(REPO / "experiments" / "llm_serving.py"),
                           "--requests", "3", "--link", "delay=5ms", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "runs OK" in done.stdout and "cleanup:" not in done.stderr
    data = json.loads((tmp_path / "llm_serving.json").read_text())
    variants = data["variants"]
    assert set(variants) == {"edf, fast path off", "edf, fast path on"}
    assert variants["edf, fast path on"]["granted"]
    assert not variants["edf, fast path off"]["granted"]
    for v in variants.values():
        assert len(v["requests"]) == 3 and v["proxy_cpu_s_per_mb"] is not None
        assert set(v["summary"]) == {"realtime", "free", "long"}
    assert (tmp_path / "llm_serving.png").stat().st_size > 0
    assert_all_gone({}, set())
