"""The LLM traffic-class experiment (topologies.llm_classes) with its default settings."""

from __future__ import annotations

from topologies import capabilities, llm_classes


def main() -> None:
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return
    llm_classes.main([])
