"""Skip tests whose host requirements are missing, with the reason printed (-ra).

Markers (see pyproject.toml): `root`, `bmv2`, `mininet`, `slow`. CI runs as
root, so there every test runs; elsewhere the skips say what is missing.
"""

from __future__ import annotations

import pytest

from topologies import capabilities

#: marker -> capability checks that must all pass for the test to run
REQUIREMENTS = {
    "root": (capabilities.root, capabilities.netns),
    "bmv2": (capabilities.bmv2,),
    "mininet": (capabilities.root, capabilities.mininet),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, checks in REQUIREMENTS.items():
            if item.get_closest_marker(marker) is None:
                continue
            for check in checks:
                cap = check()
                if not cap.available:
                    item.add_marker(pytest.mark.skip(reason=f"{cap.name}: {cap.detail}"))
                    break
