"""Names for what a run creates on the machine (network namespaces, interfaces), unique
per process, so that two runs on one machine never collide (an experiment started while
`make test` runs, two test sessions, two users).

A name is `mp` + the run tag (the process id in base 36, at most 5 characters) + a role
that says what the thing is. Interface names must fit Linux's 15 characters; `ifname`
refuses a longer one instead of letting `ip link` cut it short.

A caller that starts a run as a child process can choose its tag by setting MP_RUN_TAG
in the child's environment, and afterwards ask `remains(tag)` what of it is still on the
machine: the tests do this, so that they check their own run's clean-up and nobody
else's.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

IFNAMSIZ = 15  # longest Linux interface name
RUN_TAG_ENV = "MP_RUN_TAG"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_TAG = re.compile(r"[0-9a-z]{1,5}")


def run_tag(pid: int | None = None) -> str:
    """This run's tag: $MP_RUN_TAG if set, else the process id in base 36 (pid 4194304,
    Linux's limit, is 2ihbk)."""
    if pid is None and (chosen := os.environ.get(RUN_TAG_ENV)):
        if not _TAG.fullmatch(chosen):
            raise ValueError(f"{RUN_TAG_ENV}={chosen!r}: give 1 to 5 of 0-9 and a-z")
        return chosen
    n = os.getpid() if pid is None else pid
    out = ""
    while True:
        n, digit = divmod(n, 36)
        out = _DIGITS[digit] + out
        if n == 0:
            return out


def netns(role: str) -> str:
    """A network namespace name for `role` (e.g. "cl" -> "mp1a2b-cl"), unique to this run."""
    if not role or "/" in role:
        raise ValueError(f"bad namespace role {role!r}")
    return f"mp{run_tag()}-{role}"


def ifname(role: str) -> str:
    """An interface name for `role`, unique to this run; ValueError if it would not fit."""
    name = f"mp{run_tag()}{role}"
    if not role or len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} must be 1..{IFNAMSIZ} characters; "
                         f"pick a shorter role than {role!r}")
    return name


def remains(tag: str) -> list[str]:
    """What run `tag` left on the machine: its network namespaces and root-namespace
    interfaces (named mp<tag>...), and its processes (whose environment carries
    MP_RUN_TAG=<tag>); empty when it cleaned up after itself."""
    prefix = f"mp{tag}"
    found = []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in listed.splitlines()
              if line.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            found.append(f"link {name}")
    marker = f"{RUN_TAG_ENV}={tag}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in env and state != "Z":  # zombies are gone, only not yet reaped
            found.append(f"process {proc.name}")
    return found
