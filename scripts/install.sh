#!/usr/bin/env bash
# Create .venv and install coach with pinned versions (requirements.lock). Skips the work when nothing changed.
# Usage: scripts/install.sh [test]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "coach: creating .venv" >&2
  "$python" -m venv .venv
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
stamp=".venv/.coach-install-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)${extras:+-$extras}"
if [ -f "$stamp" ]; then
  echo "coach: already installed (${extras:-app}); skipping" >&2
  exit 0
fi
echo "coach: installing pinned dependencies (first time: ~1.2 GB, mostly the embedded model)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e "$target" >&2
touch "$stamp"
echo "coach: installed" >&2
