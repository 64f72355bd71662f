"""The MASQUE experiments (topologies.masque_fcfs_rr, topologies.masque_nested), defaults."""

from __future__ import annotations

from topologies import capabilities, masque_fcfs_rr, masque_nested


def main() -> None:
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return
    masque_fcfs_rr.main([])
    masque_nested.main([])
