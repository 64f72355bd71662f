"""Which P4 targets the target-parametrised suites (dataplane, P4Runtime conformance) run
against: MP_TARGET if set, else every target this machine has (the built-in one always)."""

from __future__ import annotations

import os

from bmv2 import launcher, toolchain


def targets_to_test() -> list[str]:
    """MP_TARGET if set; else every target this machine has (the built-in one always)."""
    if os.environ.get("MP_TARGET"):
        return [launcher.selected_target()]
    return ["soft"] + (["bmv2"] if toolchain.find("simple_switch_grpc") else [])
