#!/usr/bin/env bash
# The whole test suite: unit + golden + integration tests (cargo), then the official-SDK
# compatibility tests (pytest, in a venv at .venv). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (unit, golden fixtures, end-to-end against the mock provider)"
cargo build --workspace --bins
cargo test --workspace

echo "== SDK compatibility tests (openai, openrouter Python SDKs)"
bash tests/sdk/run.sh

echo "== JS SDK compatibility tests (openai, ai + @openrouter/ai-sdk-provider npm packages)"
bash tests/js/run.sh
