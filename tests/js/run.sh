#!/usr/bin/env bash
# JS SDK compatibility tests: the official `openai` npm SDK and the Vercel AI SDK (`ai`) with
# `@openrouter/ai-sdk-provider`, against the real gateway binary and the mock provider.
# Installs the pinned packages with `npm ci` (when node_modules is missing or package-lock.json
# changed), runs `node --test` on the *.test.mjs files and exits with its status.
#
# The binaries must be built first (scripts/test.sh does): `cargo build -p switchyard
# -p switchyard-mock-provider`; override their paths with SWITCHYARD_BIN / SWITCHYARD_MOCK_BIN.
# Extra arguments go to `node --test` (e.g. `bash tests/js/run.sh --test-name-pattern=stream`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

fail() {
    echo "tests/js: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || fail "node not found on PATH (Node.js >= 20 is required)"
command -v npm >/dev/null 2>&1 || fail "npm not found on PATH (it ships with Node.js >= 20)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] 2>/dev/null || fail "Node.js >= 20 is required, found $(node --version)"

# A missing binary is a hard failure, never a skip.
gateway_bin="${SWITCHYARD_BIN:-$repo/target/debug/switchyard}"
mock_bin="${SWITCHYARD_MOCK_BIN:-$repo/target/debug/switchyard-mock}"
for bin in "$gateway_bin" "$mock_bin"; do
    [ -x "$bin" ] || fail "binary not found or not executable: $bin
build it first: cargo build -p switchyard -p switchyard-mock-provider"
done

# Reinstall only when node_modules is missing or package-lock.json changed since the last install.
stamp="node_modules/.switchyard-lock-sha256"
lock_sha="$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha256").update(f.readFileSync("package-lock.json")).digest("hex"))')"
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_sha" ]; then
    echo "tests/js: npm ci" >&2
    npm ci --no-audit --no-fund || fail "npm ci failed"
    printf '%s' "$lock_sha" >"$stamp"
fi

shopt -s nullglob
files=(*.test.mjs)
[ "${#files[@]}" -gt 0 ] || fail "no *.test.mjs files in $here"

set +e
node --test --test-reporter=spec --test-timeout=60000 "$@" "${files[@]}"
status=$?
set -e
exit "$status"
