#!/usr/bin/env bash
# The embedded demo without make: setup (idempotent), then `credit-scorer stream demo` with any options,
# e.g. scripts/demo.sh --rate 5000 --duration 60
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec uv run credit-scorer stream demo "$@"
