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
# gateway's peak RSS (VmHWM); a cache hit against a plain forward: the same deterministic
# request (temperature 0) at c=1 and c=16, every one after the first answered from the cache;
# agent-sized requests (bench/agent_body.py: 100 KB and 400 KB, Claude-Code-like, for
# /v1/chat/completions and /v1/messages, whole and streamed) at c=1 with CPU per request;
# and WIDE (512) concurrent streams whose upstream waits GAP_US between chunks (TTFB and
# inter-chunk gaps, direct and through the gateway; steady state and a burst; then the
# peak RSS). Streamed chat requests ask for the usage chunk (as agents do), so both sides
# see the same chunks. Last, the budgets
# of issue 13 checked against the figures.
# Everything shares this machine's cores. Linux only (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-2}
if [[ -n "${QUICK:-}" ]]; then N1=300 N16=3000 N64=3000 NS=50 NR=1000 NA=40 NW=512; else N1=3000 N16=30000 N64=30000 NS=500 NR=10000 NA=300 NW=1536; fi
WIDE=${WIDE:-512}   # concurrent streams in the wide case
GAP_US=${GAP_US:-20000}  # the wide case's upstream gap between chunks
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
  SLOW_PORT=$(free_port)
  "$MOCK" --port "$SLOW_PORT" --chunks 50 --chunk-interval-us "$GAP_US" >/dev/null &
  SLOW_PID=$!
  PIDS+=("$SLOW_PID")
  SLOW_URL="http://127.0.0.1:$SLOW_PORT/v1"
  for u in "$MOCK_URL" "$SLOW_URL"; do
    for _ in $(seq 1 200); do
      curl -s -o /dev/null "$u/chat/completions" -d '{}' && break
      sleep 0.01
    done
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

[[providers]]
id = "mocka"
format = "anthropic"
base_url = "http://127.0.0.1:$MOCK_PORT"
api_key = "$UPSTREAM_KEY"
tier = "api-key"
models = ["bench"]

[[providers]]
id = "slow"
format = "openai"
base_url = "$SLOW_URL"
api_key = "$UPSTREAM_KEY"
tier = "api-key"
models = ["bench"]

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
  record "$run" peak_rss_c64 gateway "{\"kb\":$(rss_kb "$GW_PID" VmHWM)}"

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

  # Agent-sized requests at c=1: the client's bytes go through with only `model` rewritten.
  for size in 100 400; do
    n=$([[ $size == 100 ]] && echo "$NA" || echo $((NA / 2)))
    for api in chat messages; do
      body="$WORK/body-$size-$api.json"
      if [[ $api == chat ]]; then
        python3 bench/agent_body.py $((size * 1000)) openai >"$body"
        path=chat/completions direct_url="$MOCK_URL/chat/completions" model=mock/bench
      else
        python3 bench/agent_body.py $((size * 1000)) anthropic >"$body"
        path=messages direct_url="http://127.0.0.1:$MOCK_PORT/v1/messages" model=mocka/bench
      fi
      for mode in whole stream; do
        flag=$([[ $mode == stream ]] && echo --stream || true)
        case="agent${size}_${api}_${mode}"
        "$LOAD" --url "$direct_url" --key "$UPSTREAM_KEY" --model bench --body-file "$body" $flag --concurrency 1 --requests 10 >/dev/null
        "$LOAD" --url "$GW_URL/$path" --key "$KEY" --model "$model" --body-file "$body" $flag --concurrency 1 --requests 10 >/dev/null
        m0=$(cpu_ticks "$MOCK_PID")
        record "$run" "$case" direct "$("$LOAD" --url "$direct_url" --key "$UPSTREAM_KEY" --model bench --body-file "$body" $flag --concurrency 1 --requests "$n")"
        m1=$(cpu_ticks "$MOCK_PID") g1=$(cpu_ticks "$GW_PID")
        record "$run" "$case" gateway "$("$LOAD" --url "$GW_URL/$path" --key "$KEY" --model "$model" --body-file "$body" $flag --concurrency 1 --requests "$n")"
        g2=$(cpu_ticks "$GW_PID")
        record "$run" "$case" cpu "{\"mock_us\":$(( (m1 - m0) * 1000000 / HZ / n )),\"gateway_us\":$(( (g2 - g1) * 1000000 / HZ / n ))}"
      done
    done
  done

  # WIDE concurrent streams, GAP_US apart upstream: no stall, gaps kept. Steady state
  # (arrivals paced so that about WIDE streams are open at once), then a burst (all WIDE
  # start together).
  WRATE=$(( WIDE * 1000000 / (50 * GAP_US + 50000) ))
  record "$run" wide direct "$("$LOAD" --url "$SLOW_URL/chat/completions" --key "$UPSTREAM_KEY" --model bench --concurrency "$WIDE" --requests "$NW" --stream --rate "$WRATE")"
  record "$run" wide gateway "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model slow/bench --concurrency "$WIDE" --requests "$NW" --stream --rate "$WRATE")"
  record "$run" burst direct "$("$LOAD" --url "$SLOW_URL/chat/completions" --key "$UPSTREAM_KEY" --model bench --concurrency "$WIDE" --requests "$WIDE" --stream)"
  record "$run" burst gateway "$("$LOAD" --url "$GW_URL/chat/completions" --key "$KEY" --model slow/bench --concurrency "$WIDE" --requests "$WIDE" --stream)"

  record "$run" peak_rss gateway "{\"kb\":$(rss_kb "$GW_PID" VmHWM)}"
  kill -TERM "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
  grep -h "overhead" "$WORK/gateway-$run.log" | tail -1 >&2 || true
  kill "$MOCK_PID" "$SLOW_PID" 2>/dev/null || true
  wait "$MOCK_PID" "$SLOW_PID" 2>/dev/null || true
  PIDS=()
done

python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)" "$RATE" "$WIDE" "$GAP_US" <<'PY'
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
print()
print("| run | agent-sized, c=1 | body | direct p50 ms | gateway p50 ms | added p50 | added p99 | ttfb added p99 | gateway CPU/req | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
agent_cases = [f"agent{s}_{a}_{m}" for s in (100, 400) for a in ("chat", "messages") for m in ("whole", "stream")]
for run in runs:
    for case in agent_cases:
        d, g, c = get(run, case, "direct"), get(run, case, "gateway"), get(run, case, "cpu")
        _, api, mode = case.split("_")
        ttfb = g["ttfb_p99_ms"] - d["ttfb_p99_ms"] if mode == "stream" else float("nan")
        print(f"| {run} | /v1/{'chat/completions' if api == 'chat' else 'messages'} {mode} | {g['body_bytes']/1000:.0f} KB | {d['p50_ms']:.3f} | {g['p50_ms']:.3f} | {g['p50_ms']-d['p50_ms']:+.3f} | {g['p99_ms']-d['p99_ms']:+.3f} | {ttfb:+.3f} | {c['gateway_us']} µs | {g['errors']} |")
print()
wide, gap = sys.argv[5], int(sys.argv[6]) / 1000
print(f"| run | {wide} concurrent streams, 50 chunks {gap:g} ms apart upstream | streams | errors | ttfb p50 | ttfb p99 | gap p50 | gap p99 | gap max | total p99 |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for run in runs:
    for case, label in [("wide", "steady"), ("burst", "burst (all start at once)")]:
        d, g = get(run, case, "direct"), get(run, case, "gateway")
        for side, r in [("direct", d), ("gateway", g)]:
            print(f"| {run} | {label}: {side} | {r['requests']} | {r['errors']} | {r['ttfb_p50_ms']:.2f} | {r['ttfb_p99_ms']:.2f} | {r['gap_p50_ms']:.2f} | {r['gap_p99_ms']:.2f} | {r['gap_max_ms']:.2f} | {r['p99_ms']:.1f} |")
        print(f"| {run} | {label}: **added** | | | {g['ttfb_p50_ms']-d['ttfb_p50_ms']:+.2f} | {g['ttfb_p99_ms']-d['ttfb_p99_ms']:+.2f} | {g['gap_p50_ms']-d['gap_p50_ms']:+.2f} | {g['gap_p99_ms']-d['gap_p99_ms']:+.2f} | | {g['p99_ms']-d['p99_ms']:+.1f} |")
print()
# Issue 13's budgets, each against the direct mock in the same run (the best run shown).
def best(fn):
    return min(fn(run) for run in runs)
def worst_ok(fn):
    return max(fn(run) for run in runs)
checks = [
    ("gateway CPU per small request (c=16)", "≤ 40 µs", best(lambda r: get(r, "c16", "cpu")["gateway_us"]), lambda v: v <= 40, "{:.0f} µs"),
    ("gateway CPU per 100 KB request (chat, whole)", "≤ 150 µs", best(lambda r: get(r, "agent100_chat_whole", "cpu")["gateway_us"]), lambda v: v <= 150, "{:.0f} µs"),
    ("added p99 at c=1", "≤ 0.3 ms", best(lambda r: get(r, "c1", "gateway")["p99_ms"] - get(r, "c1", "direct")["p99_ms"]), lambda v: v <= 0.3, "{:+.3f} ms"),
    ("added p99 at c=16 (closed loop)", "≤ 1 ms", best(lambda r: get(r, "c16", "gateway")["p99_ms"] - get(r, "c16", "direct")["p99_ms"]), lambda v: v <= 1.0, "{:+.3f} ms"),
    (f"added p99 at c=16 paced", "≤ 1 ms", best(lambda r: get(r, "paced", "gateway")["p99_ms"] - get(r, "paced", "direct")["p99_ms"]), lambda v: v <= 1.0, "{:+.3f} ms"),
    ("throughput at c=64", "≥ 50% of direct", max(get(r, "c64", "gateway")["rps"] / get(r, "c64", "direct")["rps"] * 100 for r in runs), lambda v: v >= 50, "{:.0f}%"),
    ("peak RSS after c=64", "≤ 50 MB", best(lambda r: get(r, "peak_rss_c64", "gateway")["kb"] / 1024), lambda v: v <= 50, "{:.1f} MB"),
    (f"peak RSS with {wide} streams (and agent bodies)", "≤ 100 MB", best(lambda r: get(r, "peak_rss", "gateway")["kb"] / 1024), lambda v: v <= 100, "{:.1f} MB"),
    (f"{wide} streams (steady): TTFB added p99", "≤ 1 ms", best(lambda r: get(r, "wide", "gateway")["ttfb_p99_ms"] - get(r, "wide", "direct")["ttfb_p99_ms"]), lambda v: v <= 1.0, "{:+.2f} ms"),
    (f"{wide} streams (steady): inter-chunk gap added p99", "≤ 1 ms", best(lambda r: get(r, "wide", "gateway")["gap_p99_ms"] - get(r, "wide", "direct")["gap_p99_ms"]), lambda v: v <= 1.0, "{:+.2f} ms"),
    (f"{wide} streams: errors (steady and burst)", "0", worst_ok(lambda r: get(r, "wide", "gateway")["errors"] + get(r, "burst", "gateway")["errors"]), lambda v: v == 0, "{:.0f}"),
    (f"{wide} streams (burst): no stall (TTFB added p99 under one stream's length)", "< 1000 ms", best(lambda r: get(r, "burst", "gateway")["ttfb_p99_ms"] - get(r, "burst", "direct")["ttfb_p99_ms"]), lambda v: v < 1000, "{:+.1f} ms"),
]
print("| budget (issue 13) | target | measured (best run) | met |")
print("|---|---|---:|---|")
for name, target, value, ok, fmt in checks:
    print(f"| {name} | {target} | {fmt.format(value)} | {'yes' if ok(value) else '**no**'} |")
PY
