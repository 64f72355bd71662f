"""Skip tests whose host requirements are missing, with the reason printed (-ra).

Markers (see pyproject.toml): `root`, `bmv2`, `mininet`, `slow`. CI runs as
root, so there every test runs; elsewhere the skips say what is missing.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import pytest

from netlab import capabilities, names

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


@dataclass(frozen=True)
class TaggedRun:
    """A run tag for a child process (MP_RUN_TAG in `env`), so that the test checks what
    its own run left behind (`netlab.names.remains(tag)`), not another session's."""

    tag: str
    env: dict[str, str]


_tags = itertools.count()


@pytest.fixture
def tagged_run() -> TaggedRun:
    # "z" + 4 base-36 digits: never a real PID's tag (those are below 2ihbk)
    n = (os.getpid() * 97 + next(_tags)) % 36**4
    tag = "z" + names.run_tag(n).rjust(4, "0")
    return TaggedRun(tag, {**os.environ, names.RUN_TAG_ENV: tag})
