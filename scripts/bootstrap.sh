#!/usr/bin/env bash
# Install what `make demo` and `make test` need, and only what is missing:
# Debian packages (as root, via apt-get) and the project's virtualenv (.venv).
# Idempotent: a second run installs nothing and says so in one line.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages. The venv is made from Debian's python3 with
# --system-site-packages so that Debian's Mininet (not on PyPI) is importable.
# No Open vSwitch: this project brings its own switch, so Mininet's
# recommends (openvswitch-switch) are not installed.
APT_PACKAGES=(python3 python3-venv python3-pip iproute2 mininet bridge-utils iputils-ping ethtool)
VENV=.venv
STAMP="$VENV/.installed"
did=()

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-o DPkg::Lock::Timeout=600 -q)
    apt-get "${apt_opts[@]}" update >/dev/null
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
    did+=("apt: ${missing[*]}")
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "bootstrap: creating $VENV (Debian python3, with system site packages for Mininet)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
    did+=("venv")
fi

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [[ "$want" != "$have" ]]; then
    echo "bootstrap: installing the package and its test extras into $VENV"
    log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
           "$VENV/bin/python" -m pip install -e '.[test]'; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "bootstrap: pip install failed; full log in $log" >&2
        exit 1
    fi
    echo "$want" >"$STAMP"
    did+=("pip")
fi

# Go modules of our masque-go interop program (tests/interop/masquego): downloaded into
# Go's module cache (never into the repo); the interop tests build from there.
GO_MODULE=tests/interop/masquego
GO=$(command -v go || { [[ -x /usr/local/go/bin/go ]] && echo /usr/local/go/bin/go; } || true)
if [[ -z "$GO" ]]; then
    echo "bootstrap: skipped the Go modules of $GO_MODULE: no Go toolchain (the interop tests will skip)"
else
    if (cd "$GO_MODULE" && GOFLAGS=-mod=readonly "$GO" mod verify >/dev/null 2>&1); then
        :  # already in the module cache
    elif (cd "$GO_MODULE" && GOFLAGS=-mod=readonly "$GO" mod download); then
        did+=("go modules")
    else
        echo "bootstrap: could not download the Go modules of $GO_MODULE (the interop tests will skip)" >&2
    fi
    # build it now (into .build/, ignored by git), so that the first test does not wait for
    # a cold compile of quic-go; later builds by the tests are incremental
    if [[ ! -x .build/masquego ]] &&
       (cd "$GO_MODULE" && GOFLAGS=-mod=readonly "$GO" build -o ../../../.build/masquego . 2>/dev/null); then
        did+=("masquego")
    fi
fi

if ((${#did[@]})); then
    echo "bootstrap: done (${did[*]})"
else
    echo "bootstrap: nothing to install, everything is in place"
fi
