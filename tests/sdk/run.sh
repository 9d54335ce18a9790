#!/usr/bin/env bash
# SDK compatibility tests: the official `openai` and `openrouter` Python SDKs against the real
# gateway binary and the mock provider. Creates (or reuses) a venv at <repo>/.venv, installs the
# pinned requirements, runs pytest from the repo root and exits with pytest's status.
#
# The binaries must be built first (scripts/test.sh does): `cargo build -p switchyard
# -p switchyard-mock-provider`; override their paths with SWITCHYARD_BIN / SWITCHYARD_MOCK_BIN.
# Extra arguments are passed to pytest (e.g. `bash tests/sdk/run.sh -k streaming -x`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${SWITCHYARD_SDK_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "tests/sdk: creating venv at $venv" >&2
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "tests/sdk: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    fi
fi

"$venv/bin/python" -m pip install --quiet --requirement "$here/requirements.txt"

cd "$repo"
set +e
"$venv/bin/python" -m pytest -q tests/sdk "$@"
status=$?
set -e
exit "$status"
