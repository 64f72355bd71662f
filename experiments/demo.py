"""`make demo`: prioritized MASQUE tunnels through the P4 switch, on the built-in target.

Prints what this host can do, then brings up the Mininet topology of
`masque_proxy.py` (client, proxy, target, mp-controller, the built-in P4 target
with its port towards the target shaped to 5 Mbit/s), opens one CONNECT-UDP
tunnel per flow with the fast path (a high-priority one and two bulk ones that
overload the bottleneck) and shows, in one table, the high-priority tunnel
keeping its latency under SP-PIFO while the low-priority ones absorb the
queueing; then the same flows with the switch in FIFO mode and on the slow path
through the proxy. See `experiments/masque_priority.py`. Without root or Mininet
it says what is missing and stops.
"""

from __future__ import annotations

import argparse
import sys

from clikit import exit_on_signals
from experiments import masque_priority
from netlab import capabilities

COMMANDS = ("mp-switch", "mp-controller", "mp-ctl", "mp-proxy", "mp-client", "mp-target")


def report() -> list[str]:
    """Print the host's capabilities; what the demo lacks (empty when it can run)."""
    print("masque-pifo demo: host report")
    print(f"{'capability':<20} {'status':<8} detail")
    for cap in capabilities.all_capabilities():
        print(f"{cap.name:<20} {'yes' if cap.available else 'no':<8} {cap.detail}")
    print("console scripts installed: " + ", ".join(COMMANDS))
    print()
    return [cap.detail for cap in (capabilities.root(), capabilities.mininet())
            if not cap.available]


def main(argv: list[str] | None = None) -> int:
    """Report, then run the MASQUE priority experiment with the demo's defaults."""
    parser = argparse.ArgumentParser(prog="python -m experiments.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="traffic per variant (default 6)")
    parser.add_argument("--out", default="results/demo", help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    missing = report()
    if missing:
        print("demo: the MASQUE topology needs " + "; ".join(missing)
              + " (run `make demo` as root)", file=sys.stderr)
        return 1
    code = masque_priority.main(["--seconds", str(args.seconds), "--out", args.out])
    if code == 0:
        print("demo done")
    return code


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
