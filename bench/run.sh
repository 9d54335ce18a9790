#!/usr/bin/env bash
# Load benchmark: the same load through (1) the mock provider directly, (2) a bare nginx
# reverse proxy in front of it, and (3) Switchyard in front of it — in one run, on this
# machine — printing requests/s and latency percentiles, and Switchyard's ratio to nginx.
#
#   bench/run.sh [DURATION_SECONDS] [CONNECTIONS]      (ROUNDS=3 RATE=1000 by default)
#
# Each target is measured ROUNDS times, the rounds interleaved across targets (so a noisy
# moment of this shared 2-core machine hits every target alike), and the median is shown.
# Two phases per mode (non-streaming JSON, SSE streaming):
#   * saturation: wrk, closed loop, CONNECTIONS connections → requests/s, p50/p99;
#   * fixed rate: oha at RATE req/s (default 1000) → p50/p99 latency; Switchyard's p99
#     minus the direct p99 is the latency the gateway adds at a moderate load.
# Needs nginx and wrk (Debian) and oha (crates.io); installs what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${1:-10}"
CONNS="${2:-64}"
RATE="${RATE:-1000}"
ROUNDS="${ROUNDS:-3}"
ADMIN="sk-bench-admin-key"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null
  nginx -s stop >/dev/null 2>&1 || true
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! need oha; then
  echo "installing oha (once, ~5 min)…" >&2
  cargo install oha --locked >/dev/null
fi

cd "$ROOT"
cargo build --release -q -p switchyard -p switchyard-mock-provider
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_line() { # file pattern → prints the matching line's URL
  for _ in $(seq 1 100); do
    if grep -qo "$2" "$1" 2>/dev/null; then grep -o "$2[^ ]*" "$1" | head -1; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $2 in $1" >&2; cat "$1" >&2; return 1
}

# 1. the upstream: our mock provider, recording off.
target/release/switchyard-mock --listen 127.0.0.1:0 --no-record >"$WORK/mock.out" 2>&1 &
PIDS+=($!)
MOCK="$(wait_line "$WORK/mock.out" 'http://127.0.0.1:[0-9]*')"

# 2. bare nginx reverse proxy, 2 workers (one per core), upstream keep-alive.
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream mock { server ${MOCK#http://}; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx.err"
NGINX="http://127.0.0.1:$NGINX_PORT"

# 3. Switchyard, pointed at the mock.
cat >"$WORK/switchyard.toml" <<CONF
[server]
admin_key = "$ADMIN"
[storage]
ledger = false
[providers.mock]
kind = "openai"
base_url = "$MOCK/v1"
api_key = "sk-upstream"
[[models]]
id = "bench/echo"
name = "Bench: Echo"
context_length = 8192
[[models.endpoints]]
provider = "mock"
model = "mock-echo"
pricing = { prompt = "0.000001", completion = "0.000002" }
CONF
# A model with 5 endpoints (5 provider entries, same upstream) to measure routing cost.
for i in 1 2 3 4 5; do
  printf '[providers.mock%s]\nkind = "openai"\nbase_url = "%s/v1"\napi_key = "sk-upstream"\n' "$i" "$MOCK" >>"$WORK/switchyard.toml"
done
printf '[[models]]\nid = "bench/five"\nname = "Bench: Five endpoints"\ncontext_length = 8192\n' >>"$WORK/switchyard.toml"
for i in 1 2 3 4 5; do
  printf '[[models.endpoints]]\nprovider = "mock%s"\nmodel = "mock-echo-%s"\npricing = { prompt = "0.00000%s", completion = "0.00000%s" }\n' "$i" "$i" "$i" "$i" >>"$WORK/switchyard.toml"
done
SWITCHYARD_LOG=warn,switchyard=info target/release/switchyard serve --config "$WORK/switchyard.toml" --listen 127.0.0.1:0 >"$WORK/sy.out" 2>&1 &
PIDS+=($!)
SY="$(wait_line "$WORK/sy.out" 'http://127.0.0.1:[0-9]*')"

# 4. The same gateway with keys and the usage ledger on (SQLite in WAL mode), called with an
#    API key (budget reservation + one ledger row per request, committed before the answer).
sed -e "s|^ledger = false|url = \"sqlite://$WORK/ledger.db\"|" "$WORK/switchyard.toml" >"$WORK/switchyard-ledger.toml"
SWITCHYARD_LOG=warn,switchyard=info target/release/switchyard serve --config "$WORK/switchyard-ledger.toml" --listen 127.0.0.1:0 >"$WORK/syl.out" 2>&1 &
PIDS+=($!)
SYL="$(wait_line "$WORK/syl.out" 'http://127.0.0.1:[0-9]*')"
API_KEY=$(curl -s -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{"name":"bench"}' "$SYL/api/v1/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

body() { # model stream
  printf '{"model":"%s","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, how are you today? Please answer briefly."}],"max_tokens":64,"stream":%s}' "$1" "$2"
}
lua() { # model stream [key] → script path
  local key="${3:-$ADMIN}"
  local f="$WORK/$1-$2-${#key}.lua"; f="${f//\//_}"; f="$WORK/$(basename "$f")"
  cat >"$f" <<LUA
wrk.method = "POST"
wrk.body = '$(body "$1" "$2")'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
  echo "$f"
}

# Sanity: each target answers.
for t in "$MOCK/v1/chat/completions mock-echo" "$NGINX/v1/chat/completions mock-echo" "$SY/api/v1/chat/completions bench/echo"; do
  set -- $t
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$(body "$2" false)" "$1")
  [ "$code" = 200 ] || { echo "sanity check failed for $1: HTTP $code" >&2; exit 1; }
done

to_ms() { # wrk latency like 1.23ms / 850.00us / 1.02s → ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); printf "%.3f", v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); printf "%.3f", v} else {sub(/s/,"",v); printf "%.3f", v*1000} }'
}
run_wrk() { # url script → "rps p50 p99 errors"
  local out; out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$2" "$1")
  local rps p50 p99 errs
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
  errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); errs=${errs:-0}
  echo "$rps $p50 $p99 $errs"
}
run_oha() { # url model stream [key] → "p50 p99 success_rate"
  oha -z "${DURATION}s" -q "$RATE" -c 32 --no-tui --output-format json -m POST \
      -H "Authorization: Bearer ${4:-$ADMIN}" -H 'Content-Type: application/json' -d "$(body "$2" "$3")" "$1" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["latencyPercentiles"]; print("%.3f %.3f %.4f" % (p["p50"]*1000, p["p99"]*1000, d["summary"]["successRate"]))'
}

median() { python3 -c 'import statistics,sys; print("%.3f" % statistics.median(map(float, sys.argv[1:])))' "$@"; }

echo
echo "Switchyard load benchmark — $(nproc) cores, wrk -t2 -c$CONNS -d${DURATION}s; fixed rate $RATE req/s with oha; median of $ROUNDS interleaved rounds"
TARGETS="direct nginx switchyard switchyard-5ep sy+keys+ledger"
for mode in false true; do
  label=$([ "$mode" = true ] && echo "streaming (SSE)" || echo "non-streaming (JSON)")
  declare -A A_RPS A_P50 A_P99 A_ERR A_FP50 A_FP99
  for t in $TARGETS; do A_RPS[$t]=""; A_P50[$t]=""; A_P99[$t]=""; A_ERR[$t]=0; A_FP50[$t]=""; A_FP99[$t]=""; done
  for round in $(seq 1 "$ROUNDS"); do
    for t in $TARGETS; do
      key=$ADMIN
      case $t in
        direct) url="$MOCK/v1/chat/completions"; model=mock-echo ;;
        nginx) url="$NGINX/v1/chat/completions"; model=mock-echo ;;
        switchyard) url="$SY/api/v1/chat/completions"; model=bench/echo ;;
        switchyard-5ep) url="$SY/api/v1/chat/completions"; model=bench/five ;;
        sy+keys+ledger) url="$SYL/api/v1/chat/completions"; model=bench/echo; key=$API_KEY ;;
      esac
      read -r rps p50 p99 errs < <(run_wrk "$url" "$(lua "$model" "$mode" "$key")")
      read -r fp50 fp99 ok < <(run_oha "$url" "$model" "$mode" "$key")
      A_RPS[$t]+=" $rps"; A_P50[$t]+=" $p50"; A_P99[$t]+=" $p99"; A_ERR[$t]=$((A_ERR[$t] + errs))
      A_FP50[$t]+=" $fp50"; A_FP99[$t]+=" $fp99"
    done
  done
  echo
  echo "== $label"
  printf '%-15s %12s %10s %10s %8s   %12s %12s\n' target "req/s" "p50 ms" "p99 ms" errors "@${RATE} p50" "@${RATE} p99"
  declare -A RPS P99R
  for t in $TARGETS; do
    RPS[$t]=$(median ${A_RPS[$t]}); P99R[$t]=$(median ${A_FP99[$t]})
    printf '%-15s %12s %10s %10s %8s   %12s %12s\n' "$t" "${RPS[$t]}" "$(median ${A_P50[$t]})" "$(median ${A_P99[$t]})" "${A_ERR[$t]}" "$(median ${A_FP50[$t]})" "${P99R[$t]}"
  done
  echo "   (req/s of each round: switchyard${A_RPS[switchyard]} / nginx${A_RPS[nginx]})"
  python3 - "${RPS[switchyard]}" "${RPS[nginx]}" "${RPS[direct]}" "${P99R[switchyard]}" "${P99R[direct]}" "${P99R[nginx]}" "${RPS[switchyard-5ep]}" "${RPS[sy+keys+ledger]}" <<'PY'
import sys
sy, ng, di, sy99, di99, ng99, sy5, syl = map(float, sys.argv[1:])
print(f"switchyard / nginx req/s: {sy/ng:.2f}x   switchyard / direct req/s: {sy/di:.2f}x   5 endpoints / 1 endpoint: {sy5/sy:.2f}x")
print(f"keys+ledger on / off req/s: {syl/sy:.2f}x  (cost of the ledger: {100*(1-syl/sy):.1f}%)")
print(f"p99 added at fixed rate: switchyard {sy99-di99:+.3f} ms, nginx {ng99-di99:+.3f} ms (vs direct)")
PY
  unset A_RPS A_P50 A_P99 A_ERR A_FP50 A_FP99 RPS P99R
done
