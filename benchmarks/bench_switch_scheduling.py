"""The switch-scheduling experiment (topologies.switch_scheduling) with its default settings:
FIFO, STRICT and SP-PIFO at a 5 Mbit/s bottleneck on the built-in target, beside the
pure-Python reference; prints a skip line where network namespaces are missing."""

from __future__ import annotations

from topologies import capabilities, switch_scheduling


def main() -> None:
    """Run the experiment with defaults, or say why it is skipped."""
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return
    switch_scheduling.main([])
