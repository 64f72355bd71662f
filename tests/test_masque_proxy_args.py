"""topologies/masque_proxy.py without root: bad flags are one line and exit 2, and the
per-host link flags reach the topology."""

from __future__ import annotations

import pytest

from netlab.linkemu import parse_spec
from topologies import masque_proxy
from topologies import masque_topology as mq


@pytest.mark.parametrize("argv,message", [
    (["--targets", "9"], "--targets must be 1..8"),
    (["--link", "loss=lots"], "--link:"),
    (["--host-link", "t3:delay=5ms"], "no host 't3'"),
    (["--targets", "3", "--host-link", "t3"], "expected HOST:SPEC"),
    (["--host-link", "t1:delay=5ms", "--host-link", "t1:delay=6ms"], "given twice"),
    (["--link", "delay=5ms", "--host-link", "client:delay=6ms"], "given twice"),
    (["--bottleneck", "5mbit", "--target", "bmv2"], "needs --target soft"),
    (["--count", "0"], "--count must be >= 1"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        masque_proxy.main(argv)
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("masque_proxy: error:") and message in last, last


def test_each_host_keeps_its_own_link() -> None:
    topo = mq.MasqueTopology(targets=2, link=parse_spec("delay=5ms"),
                             host_links={"t2": parse_spec("rate=10mbit,delay=20ms")})
    try:
        assert set(topo.links) == {"client", "t2"}
        assert topo.links["t2"].delay_s == pytest.approx(0.02)
        assert topo.link is topo.links["client"]
        assert "client: 5 ms; t2: 10 Mbit/s, 20 ms, each way" in topo.describe_links()
    finally:
        topo.stop()


@pytest.mark.parametrize("kwargs,message", [
    ({"host_links": {"t5": parse_spec("delay=1ms")}}, "no host t5"),
    ({"link": parse_spec("delay=1ms"), "host_links": {"client": parse_spec("delay=2ms")}},
     "given twice"),
])
def test_topology_refuses_unknown_or_doubled_links(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mq.MasqueTopology(targets=1, **kwargs)
