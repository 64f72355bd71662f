"""`make demo`: the main job. At this stage it reports what this host can run.

It grows with the project: once the switch, controller and MASQUE agents exist,
it brings up the proxy topology and prints the prioritisation table.
"""

from __future__ import annotations

import sys

from topologies import capabilities

COMMANDS = ("mp-switch", "mp-controller", "mp-ctl", "mp-proxy", "mp-client", "mp-target")


def main() -> int:
    print("masque-pifo demo: host report")
    print(f"{'capability':<20} {'status':<8} detail")
    for cap in capabilities.all_capabilities():
        print(f"{cap.name:<20} {'yes' if cap.available else 'no':<8} {cap.detail}")
    print()
    print("console scripts installed: " + ", ".join(COMMANDS))
    print("targets: built-in software target (issue 4, not yet built); "
          f"BMv2: {'found' if capabilities.bmv2().available else 'not installed'}")
    print("demo done: the topology demo arrives with the switch, controller and MASQUE agents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
