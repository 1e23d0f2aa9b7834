#!/usr/bin/env bash
# The load benchmark: the gateway's own cost, measured against the mock it fronts.
#
#   ./bench/run.sh            # two runs, one table
#   RUNS=1 QUICK=1 ./bench/run.sh   # one short run (smoke check)
#
# Builds (release) the gateway, examples/mock_upstream and examples/loadgen, then per run:
# starts the mock and a fresh gateway (logging at warn, own data dir), measures the time
# from process start to the first successful completion and the idle RSS, then drives
# non-streaming completions at concurrency 1, 16 and 64 directly to the mock and through
# the gateway, a 200-chunk stream, and a combo whose first target answers 429; last the
# gateway's peak RSS (VmHWM); and a cache hit against a plain forward: the same deterministic
# request (temperature 0) at c=1 and c=16, every one after the first answered from the cache.
# Everything shares this machine's cores. Linux only (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-2}
if [[ -n "${QUICK:-}" ]]; then N1=300 N16=3000 N64=3000 NS=50 NR=1000; else N1=3000 N16=30000 N64=30000 NS=500 NR=10000; fi
RATE=${RATE:-1000}  # the paced case: 16 connections sharing RATE requests/s
KEY=sk-bench-client
UPSTREAM_KEY=upstream-bench

echo "building (release)..." >&2
cargo build --release --quiet --bin omniroute --example mock_upstream --example loadgen
BIN=target/release/omniroute
MOCK=target/release/examples/mock_upstream
LOAD=target/release/examples/loadgen

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, in clock ticks
HZ=$(getconf CLK_TCK)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

record() { # run case side json
  printf '{"run":%s,"case":"%s","side":"%s","r":%s}\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS..." >&2
  MOCK_PORT=$(free_port)
  GW_PORT=$(free_port)
  "$MOCK" --port "$MOCK_PORT" >/dev/null &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  MOCK_URL="http://127.0.0.1:$MOCK_PORT/v1"
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "$MOCK_URL/chat/completions" -d '{}' && break
    sleep 0.01
  done

  DATA="$WORK/data-$run"
  cat >"$WORK/gateway-$run.toml" <<EOF
[server]
api_keys = ["$KEY"]

[[providers]]
id = "mock"
format = "openai"
base_url = "$MOCK_URL"
api_key = "$UPSTREAM_KEY"
tier = "api-key"
models = ["bench", "fail-429"]

[[combos]]
name = "fallback"
strategy = "priority"
models = ["mock/fail-429", "mock/bench"]
EOF
  # Apply the config once so the timed start below measures serving, not the first-start
  # key generation and migrations.
  "$BIN" --data-dir "$DATA" --config "$WORK/gateway-$run.toml" --log-level warn keys list >/dev/null

  T0=$(date +%s%N)
  "$BIN" --data-dir "$DATA" --config "$WORK/gateway-$run.toml" --port "$GW_PORT" --log-level warn \
    >"$WORK/gateway-$run.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  GW_URL="http://127.0.0.1:$GW_PORT/v1"
  record "$run" start gateway "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --first-response-since-ns "$T0")"
  sleep 1
  record "$run" idle_rss gateway "{\"kb\":$(rss_kb "$GW_PID" VmRSS)}"

  for c in 1 16 64; do
    n=$([[ $c == 1 ]] && echo "$N1" || ([[ $c == 16 ]] && echo "$N16" || echo "$N64"))
    # Warm both sides (connection pools, allocator), then measure.
    "$LOAD" --url "$MOCK_URL/chat/completions" --key "$UPSTREAM_KEY" --model bench --concurrency "$c" --requests $((c * 20)) >/dev/null
    "$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --concurrency "$c" --requests $((c * 20)) >/dev/null
    m0=$(cpu_ticks "$MOCK_PID")
    record "$run" "c$c" direct "$("$LOAD" --url "$MOCK_URL/chat/completions" --key "$UPSTREAM_KEY" --model bench --concurrency "$c" --requests "$n")"
    m1=$(cpu_ticks "$MOCK_PID") g1=$(cpu_ticks "$GW_PID")
    record "$run" "c$c" gateway "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --concurrency "$c" --requests "$n")"
    g2=$(cpu_ticks "$GW_PID")
    # CPU time per request: the mock's when hit directly, the gateway's when proxying.
    record "$run" "c$c" cpu "{\"mock_us\":$(( (m1 - m0) * 1000000 / HZ / n )),\"gateway_us\":$(( (g2 - g1) * 1000000 / HZ / n ))}"
  done

  # Cache hits: the same request with temperature 0 (the first one is the miss, in the warm-up).
  for c in 1 16; do
    n=$([[ $c == 1 ]] && echo "$N1" || echo "$N16")
    "$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --temperature 0 --concurrency "$c" --requests $((c * 20)) >/dev/null
    g1=$(cpu_ticks "$GW_PID")
    record "$run" "cache$c" hit "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --temperature 0 --concurrency "$c" --requests "$n")"
    g2=$(cpu_ticks "$GW_PID")
    record "$run" "cache$c" cpu "{\"gateway_us\":$(( (g2 - g1) * 1000000 / HZ / n ))}"
  done

  # Paced: the same 16 connections at a fixed total rate well below saturation, so the
  # difference is the gateway's added latency rather than CPU queueing.
  record "$run" paced direct "$("$LOAD" --url "$MOCK_URL/chat/completions" --key "$UPSTREAM_KEY" --model bench --concurrency 16 --requests "$NR" --rate "$RATE")"
  record "$run" paced gateway "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --concurrency 16 --requests "$NR" --rate "$RATE")"

  record "$run" stream direct "$("$LOAD" --url "$MOCK_URL/chat/completions" --key "$UPSTREAM_KEY" --model bench --concurrency 1 --requests "$NS" --stream)"
  record "$run" stream gateway "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --concurrency 1 --requests "$NS" --stream)"

  record "$run" fallback gateway-direct "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model mock/bench --concurrency 16 --requests "$N16")"
  record "$run" fallback gateway-combo "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model fallback --concurrency 16 --requests "$N16")"

  record "$run" peak_rss gateway "{\"kb\":$(rss_kb "$GW_PID" VmHWM)}"
  kill -TERM "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
  grep -h "overhead" "$WORK/gateway-$run.log" | tail -1 >&2 || true
  kill "${PIDS[0]}" 2>/dev/null || true
  wait "${PIDS[0]}" 2>/dev/null || true
  PIDS=()
done

python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)" "$RATE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cores, cpu = sys.argv[2], sys.argv[3]
def get(run, case, side):
    for r in rows:
        if r["run"] == run and r["case"] == case and r["side"] == side:
            return r["r"]
runs = sorted({r["run"] for r in rows})
print(f"machine: {cores} cores, {cpu}; mock, gateway and load generator share them")
print()
print("| run | case | side | req/s | p50 ms | p90 ms | p99 ms | errors / CPU per request |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for run in runs:
    for case in ["c1", "c16", "c64"]:
        for side in ["direct", "gateway"]:
            r = get(run, case, side)
            print(f"| {run} | non-stream {case} | {side} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} |")
        d, g = get(run, case, "direct"), get(run, case, "gateway")
        cpu = get(run, case, "cpu")
        print(f"| {run} | non-stream {case} | **added** | {g['rps']/d['rps']*100:.0f}% of direct | {g['p50_ms']-d['p50_ms']:+.3f} | {g['p90_ms']-d['p90_ms']:+.3f} | {g['p99_ms']-d['p99_ms']:+.3f} | CPU/req: mock {cpu['mock_us']} µs, gateway {cpu['gateway_us']} µs |")
print()
print("| run | cache hit vs plain forward | req/s | p50 ms | p90 ms | p99 ms | gateway CPU per request | hits |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for run in runs:
    for c in ["1", "16"]:
        f, h = get(run, "c" + c, "gateway"), get(run, "cache" + c, "hit")
        fc, hc = get(run, "c" + c, "cpu"), get(run, "cache" + c, "cpu")
        print(f"| {run} | c={c} forward (mock/bench) | {f['rps']:.0f} | {f['p50_ms']:.3f} | {f['p90_ms']:.3f} | {f['p99_ms']:.3f} | {fc['gateway_us']} µs | {f.get('cache_hits', 0)} |")
        print(f"| {run} | c={c} cache hit (temperature 0) | {h['rps']:.0f} | {h['p50_ms']:.3f} | {h['p90_ms']:.3f} | {h['p99_ms']:.3f} | {hc['gateway_us']} µs | {h['cache_hits']} of {h['requests']} |")
print()
rate = sys.argv[4]
print(f"| run | c=16 paced at {rate} req/s | p50 ms | p90 ms | p99 ms | errors |")
print("|---|---|---:|---:|---:|---:|")
for run in runs:
    d, g = get(run, "paced", "direct"), get(run, "paced", "gateway")
    for side, r in [("direct", d), ("gateway", g)]:
        print(f"| {run} | {side} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} |")
    print(f"| {run} | **added** | {g['p50_ms']-d['p50_ms']:+.3f} | {g['p90_ms']-d['p90_ms']:+.3f} | {g['p99_ms']-d['p99_ms']:+.3f} | |")
print()
print("| run | 200-chunk stream | ttfb p50 ms | ttfb p99 ms | total p50 ms | total p99 ms |")
print("|---|---|---:|---:|---:|---:|")
for run in runs:
    d, g = get(run, "stream", "direct"), get(run, "stream", "gateway")
    for side, r in [("direct", d), ("gateway", g)]:
        print(f"| {run} | {side} | {r['ttfb_p50_ms']:.3f} | {r['ttfb_p99_ms']:.3f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    print(f"| {run} | **added** | {g['ttfb_p50_ms']-d['ttfb_p50_ms']:+.3f} | {g['ttfb_p99_ms']-d['ttfb_p99_ms']:+.3f} | {g['p50_ms']-d['p50_ms']:+.3f} | {g['p99_ms']-d['p99_ms']:+.3f} |")
print()
print("| run | c=16 through the gateway | req/s | p50 ms | p99 ms | errors |")
print("|---|---|---:|---:|---:|---:|")
for run in runs:
    a, b = get(run, "fallback", "gateway-direct"), get(run, "fallback", "gateway-combo")
    print(f"| {run} | mock/bench | {a['rps']:.0f} | {a['p50_ms']:.3f} | {a['p99_ms']:.3f} | {a['errors']} |")
    print(f"| {run} | combo: 429 then fallback | {b['rps']:.0f} | {b['p50_ms']:.3f} | {b['p99_ms']:.3f} | {b['errors']} |")
print()
print("| run | first response after start | idle RSS | peak RSS |")
print("|---|---:|---:|---:|")
for run in runs:
    s = get(run, "start", "gateway")["first_response_ms"]
    i = get(run, "idle_rss", "gateway")["kb"] / 1024
    p = get(run, "peak_rss", "gateway")["kb"] / 1024
    print(f"| {run} | {s:.1f} ms | {i:.1f} MB | {p:.1f} MB |")
PY
