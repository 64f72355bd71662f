"""Paced flows through CONNECT-UDP tunnels (hostagent/masque/paced.py): flow specs and a
short loopback run through mp-proxy to the UDP echo, in this process."""

from __future__ import annotations

import pytest

from hostagent.masque.paced import STAMP, parse_flow, run_flows
from tests.masque.helpers import LOOPBACK, environment, run

pytestmark = pytest.mark.timeout(60)


def test_flow_spec_parses_rate_and_checks_its_fields() -> None:
    spec = parse_flow("high, 0, 0.4mbit, 200")
    assert (spec.name, spec.priority, spec.rate_bps, spec.size) == ("high", 0, 400_000, 200)
    assert spec.packets_per_second == pytest.approx(250.0)
    for bad, why in (("high,0,1mbit", "NAME,PRIORITY,RATE,SIZE"),
                     ("high,x,1mbit,200", "integers"), ("high,-1,1mbit,200", ">= 0"),
                     ("high,0,1mbit,4", f"{STAMP.size}..1200"),
                     ("high,0,1mbit,1500", "..1200"), ("high,0,1bps,200", "bytes/s")):
        with pytest.raises(ValueError, match=why.replace(".", r"\.")):
            parse_flow(bad)


def test_paced_flows_are_echoed_through_the_proxy_with_their_rtts() -> None:
    async def main() -> dict:
        async with environment() as env:
            return await run_flows((LOOPBACK, env.proxy_port), (LOOPBACK, env.udp_port),
                                   [parse_flow("a,0,0.2mbit,100"),
                                    parse_flow("b,5,0.4mbit,500")], 0.5)

    result = run(main())
    a, b = result["flows"]
    assert (a["name"], b["name"]) == ("a", "b")
    # 250 and 100 packets/s for half a second, plus the first of each
    assert 115 <= a["sent"] <= 126 and 46 <= b["sent"] <= 51
    for flow in (a, b):
        assert flow["path"] == "slow path" and not flow["error"]
        assert flow["received"] == flow["sent"]  # loopback loses nothing
        assert len(flow["rtts_ms"]) == flow["received"]
        assert all(rtt > 0 for rtt in flow["rtts_ms"])
