#!/usr/bin/env bash
# Set up (a virtualenv in .venv) and run every check: ruff, mypy, pytest.
# This is the README's test command, and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# tests/multihost/test_ray.py runs a real Ray cluster: Ray from PyPI (the ray extra)
.venv/bin/python -m pip install --quiet -e '.[ray]'

# tests/zookeeper run a real ZooKeeper (Debian's zookeeper package, and the Java
# it pulls in); tests/integration/test_metrics.py runs a real Prometheus
# (Debian's prometheus); tests/integration/test_tracker.py drives the web UI in
# Debian's chromium (through Playwright, from the test extras; Playwright never
# downloads a browser here). Without them those tests skip, except under
# CI=true, where they fail.
missing=()
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# tests/multihost run a real Slurm (Debian's slurmctld, slurmd, munge) on simulated
# hosts: network namespaces, which need root and iproute2
command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
command -v munged >/dev/null 2>&1 || missing+=(munge)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo"
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "not installed: ${missing[*]}, and there is no apt-get: the tests that need them skip"
    elif [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
        echo "== installing ${missing[*]} (apt-get)"
        $SUDO apt-get update -qq && \
            $SUDO env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || \
            echo "installing ${missing[*]} failed; their tests skip (fail under CI=true)"
    else
        echo "not installed: ${missing[*]}; installing needs root or sudo:"
        echo "  sudo apt-get install --no-install-recommends ${missing[*]}"
    fi
fi

echo "== ruff"
.venv/bin/ruff check heronpy_lite topologies tests benchmarks
.venv/bin/ruff format --check heronpy_lite topologies tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
