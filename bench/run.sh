#!/usr/bin/env bash
# bench/run.sh: what does a gateway add to every call? One command, one run, all targets interleaved.
#
# Targets (TARGETS, in this order by default), all on 127.0.0.1:
#   direct   the C fake OpenAI-compatible upstream itself (bench/fake_upstream.c, :18001)
#   llmops   `llmops serve` with everything on: JWT auth, usage log, metrics (:18010)
#   aiohttp  bare Starlette + aiohttp pass-through (bench/passthrough_aiohttp.py, :18004)
#   httpx    the same pass-through with httpx (bench/passthrough_httpx.py, :18002)
#   litellm  the LiteLLM proxy from PyPI at LITELLM_VERSION (:18003)
# Each gateway is pinned to GW_CPU, the upstream and the load generator (wrk) to UP_CPU. A concurrency
# written "1s" in CONCS re-pins the gateway onto UP_CPU for that run (see README: on a VM every hop
# between cores costs a cross-CPU wake-up, which swamps a sub-millisecond difference at concurrency 1).
#
# Environment (all optional):
#   QUICK=1          preset for a ~3 minute run: DURATION=3 WARMUP=1 ROUNDS=1 TTFT_COUNT=100 PROFILE_SECONDS=5
#   DURATION (10)    seconds measured per point;   WARMUP (3) seconds of discarded load before each point
#   ROUNDS (2)       interleaved rounds over every (mode, concurrency, target)
#   CONCS ("1s 1 50")  MODES ("json stream")  TARGETS ("direct llmops aiohttp httpx litellm")
#   TTFT_COUNT (300) sequential streamed calls per target and round for time to first token
#   USAGE_ROWS (1000000)  rows in the usage log that `llmops usage --last 5` is timed on
#   PROFILE (1)      py-spy profile of llmops under load after the measured rounds; PROFILE_SECONDS (15)
#   SKIP_INSTALL=1   reuse the venvs and binaries in WORKDIR as they are (no apt, no pip)
#   WORKDIR (${TMPDIR:-/tmp}/llmops-bench)  venvs and the compiled upstream, kept between runs
#   OUT (bench/out-<time>)  results: results.tsv, summary.md, raw wrk output, logs, profiles
#   UP_CPU (0) GW_CPU (1)   LITELLM_VERSION (1.77.7)   PYTHON (python3) for the venvs
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")
if [ "${QUICK:-0}" = 1 ]; then
  : "${DURATION:=3}" "${WARMUP:=1}" "${ROUNDS:=1}" "${TTFT_COUNT:=100}" "${PROFILE_SECONDS:=5}"
fi
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-2}
CONCS=${CONCS:-"1s 1 50"}
MODES=${MODES:-"json stream"}
TARGETS=${TARGETS:-"direct llmops aiohttp httpx litellm"}
TTFT_COUNT=${TTFT_COUNT:-300}
USAGE_ROWS=${USAGE_ROWS:-1000000}
PROFILE=${PROFILE:-1}
PROFILE_SECONDS=${PROFILE_SECONDS:-15}
UP_CPU=${UP_CPU:-0}
GW_CPU=${GW_CPU:-1}
LITELLM_VERSION=${LITELLM_VERSION:-1.77.7}
PYTHON=${PYTHON:-python3}
WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/llmops-bench}
OUT=${OUT:-$BENCH/out-$(date +%Y%m%d-%H%M%S)}
RUNDIR=$OUT/run  # data dirs and config of this run's gateways
VENV=$WORKDIR/venv-llmops     # llmops (editable from this clone) and the pass-throughs
LL_VENV=$WORKDIR/venv-litellm
UP_PORT=18001

case "$LITELLM_VERSION" in
  1.82.7 | 1.82.8 | 1.107.0)
    echo "refusing LiteLLM $LITELLM_VERSION: a reported compromised release" >&2; exit 2 ;;
esac

mkdir -p "$WORKDIR" "$OUT/wrk" "$OUT/logs" "$RUNDIR"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/run.log" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ processes we start
STARTED=()  # PIDs, in start order; only these are ever signalled
tree() { local p=$1 k; echo "$p"; for k in $(pgrep -P "$p" 2>/dev/null || true); do tree "$k"; done; }
stop_tree() {
  local all p i; all=$(tree "$1")
  for p in $all; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 50); do
    local alive=0; for p in $all; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0; sleep 0.1
  done
  for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
}
cleanup() { local i; for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_tree "${STARTED[$i]}"; done; STARTED=(); }
trap cleanup EXIT
trap 'exit 130' INT TERM

tree_sum() {  # field pid: sum a kB field of /proc/PID/status over the process tree
  local t=0 p v
  for p in $(tree "$2"); do v=$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true); t=$((t + ${v:-0})); done
  echo $t
}
tree_cpu_ticks() {  # utime + stime of the process tree, in clock ticks
  local t=0 p v
  for p in $(tree "$1"); do v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true); t=$((t + ${v:-0})); done
  echo $t
}
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4}' /proc/stat; }  # user nice system, all CPUs, as per-process times
pin_tree() { local p; for p in $(tree "$1"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1 || true; done; }
port_free() { ! ss -ltnH "sport = :$1" | grep -q .; }
now() { date +%s.%N; }
fact() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$OUT/facts.tsv"; }  # target key value
client() { "$PYTHON" "$BENCH/chat_client.py" "$@"; }

# ------------------------------------------------------------------ install
install_tools() {
  local need=()
  command -v wrk >/dev/null || need+=(wrk)
  command -v gcc >/dev/null || need+=(gcc libc6-dev)
  command -v pgrep >/dev/null || need+=(procps)
  command -v ss >/dev/null || need+=(iproute2)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v sqlite3 >/dev/null || need+=(sqlite3)
  command -v hyperfine >/dev/null || need+=(hyperfine)
  [ -x /usr/bin/time ] || need+=(time)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } \
      >>"$OUT/logs/apt.log" 2>&1 || log "apt-get failed (see logs/apt.log); continuing with what is there"
  fi
  for t in wrk gcc taskset pgrep ss; do command -v $t >/dev/null || die "$t is required"; done
}

install_venvs() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  log "pip install -e $REPO (+ py-spy) into $VENV"
  "$VENV/bin/pip" install -q -e "$REPO" py-spy >>"$OUT/logs/pip-llmops.log" 2>&1 \
    || die "pip install into $VENV failed (logs/pip-llmops.log)"
  case " $TARGETS " in *" litellm "*) ;; *) return 0 ;; esac
  local have=""
  [ -x "$LL_VENV/bin/python" ] && have=$("$LL_VENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true)
  if [ "$have" != "$LITELLM_VERSION" ]; then
    log "installing litellm[proxy]==$LITELLM_VERSION into $LL_VENV (a few minutes; had: ${have:-none})"
    rm -rf "$LL_VENV"
    "$PYTHON" -m venv "$LL_VENV"
    local constraints=()
    # The dependency set measured in RESULTS.md, so that a later run installs the same thing.
    grep -qx "litellm==$LITELLM_VERSION" "$BENCH/constraints-litellm.txt" && constraints=(-c "$BENCH/constraints-litellm.txt")
    "$LL_VENV/bin/pip" install -q "${constraints[@]}" "litellm[proxy]==$LITELLM_VERSION" >>"$OUT/logs/pip-litellm.log" 2>&1 \
      || die "pip install litellm failed (logs/pip-litellm.log)"
  fi
}

build_upstream() {
  gcc -O2 -Wall -o "$WORKDIR/fake_upstream.new" "$BENCH/fake_upstream.c" 2>>"$OUT/logs/gcc.log" \
    || die "gcc failed (logs/gcc.log)"
  mv "$WORKDIR/fake_upstream.new" "$WORKDIR/fake_upstream"
}

if [ "${SKIP_INSTALL:-0}" = 1 ]; then
  [ -x "$VENV/bin/llmops" ] || die "SKIP_INSTALL=1 but $VENV has no llmops; run once without it"
else
  install_tools
  install_venvs
fi
build_upstream
PY=$VENV/bin/python

# ------------------------------------------------------------------ targets
declare -A URL KEY MODEL PID HOME_CPU
ORDER=()

start_target() {  # name port cpu command...: start pinned, time the first 200, record idle RSS
  local name=$1 port=$2 cpu=$3 t0 ready; shift 3
  port_free "$port" || die "port $port is busy: stop what listens there first"
  t0=$(now)
  (cd "$RUNDIR" && exec taskset -c "$cpu" "$@") >"$OUT/logs/$name.log" 2>&1 &
  PID[$name]=$!; STARTED+=("${PID[$name]}"); HOME_CPU[$name]=$cpu
  ready=$(client ready "${URL[$name]}" --key "${KEY[$name]}" --model "${MODEL[$name]}" --since "$t0" \
    --pid "${PID[$name]}" --timeout 180) || die "$name never answered 200 (logs/$name.log)"
  fact "$name" first_200_s "${ready#first_200_s=}"
  fact "$name" rss_idle_kb "$(tree_sum VmRSS "${PID[$name]}")"
  log "$name: pid ${PID[$name]}, ${ready}, RSS $(( $(tree_sum VmRSS "${PID[$name]}") / 1024 )) MiB"
}

write_llmops_config() {
  # The models file routes fake-gpt to the fake upstream through the openai provider; the upstream key
  # comes from an environment variable, as a real deployment would do it.
  cat >"$RUNDIR/models.json" <<EOF
{
  "default_model": "fake-gpt",
  "models": [
    {
      "name": "fake-gpt",
      "provider": "openai",
      "base_url": "http://127.0.0.1:$UP_PORT/v1",
      "api_key_env": "BENCH_UPSTREAM_KEY"
    }
  ]
}
EOF
}

write_litellm_config() {
  mkdir -p "$RUNDIR/litellm"
  cat >"$RUNDIR/litellm/config.yaml" <<EOF
model_list:
  - model_name: fake-gpt
    litellm_params:
      model: openai/fake-gpt
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: sk-bench-upstream
litellm_settings:
  drop_params: true
  turn_off_message_logging: true
  request_timeout: 30
general_settings:
  master_key: $LITELLM_KEY
  disable_spend_logs: true
  disable_error_logs: true
  background_health_checks: false
EOF
  # uvicorn's access log off, as for the other targets
  cat >"$RUNDIR/litellm/log_config.json" <<'EOF'
{"version": 1, "disable_existing_loggers": false,
 "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
 "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": false},
             "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": false}}}
EOF
}

port_free $UP_PORT || die "port $UP_PORT is busy: stop what listens there first"
taskset -c "$UP_CPU" "$WORKDIR/fake_upstream" $UP_PORT >"$OUT/logs/upstream.log" 2>&1 &
PID[upstream]=$!; STARTED+=("${PID[upstream]}")
URL[direct]=http://127.0.0.1:$UP_PORT/v1/chat/completions; KEY[direct]=sk-bench-direct; MODEL[direct]=fake-gpt
client ready "${URL[direct]}" --since "$(now)" --pid "${PID[upstream]}" --timeout 10 >/dev/null \
  || die "fake upstream did not start (logs/upstream.log)"
log "fake upstream: pid ${PID[upstream]} on :$UP_PORT, cpu $UP_CPU"

PASS_ENV=(env "UPSTREAM=http://127.0.0.1:$UP_PORT" PYTHONDONTWRITEBYTECODE=1)
UVICORN_OPTS=(--host 127.0.0.1 --loop uvloop --http httptools --no-access-log --log-level warning)
LITELLM_KEY=sk-bench-litellm-$RANDOM$RANDOM
: >"$OUT/facts.tsv"
for name in $TARGETS; do
  case $name in
    direct) PID[direct]=${PID[upstream]}; HOME_CPU[direct]=$UP_CPU ;;
    llmops)
      write_llmops_config
      export JWT_SECRET BENCH_UPSTREAM_KEY=sk-bench-upstream-dummy LLMOPS_MODELS_FILE=$RUNDIR/models.json
      JWT_SECRET=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')
      URL[$name]=http://127.0.0.1:18010/v1/chat/completions; MODEL[$name]=fake-gpt
      KEY[$name]=$(cd "$RUNDIR" && "$VENV/bin/llmops" token --sub bench --ttl 2h) || die "llmops token failed"
      start_target $name 18010 "$GW_CPU" "$VENV/bin/llmops" serve --host 127.0.0.1 --port 18010 \
        --data-dir "$RUNDIR/llmops-data" ;;
    aiohttp | httpx)
      port=18004; [ $name = httpx ] && port=18002
      URL[$name]=http://127.0.0.1:$port/v1/chat/completions; KEY[$name]=sk-bench-pass; MODEL[$name]=fake-gpt
      start_target $name $port "$GW_CPU" "${PASS_ENV[@]}" "$VENV/bin/uvicorn" "passthrough_$name:app" \
        --app-dir "$BENCH" --port $port "${UVICORN_OPTS[@]}" ;;
    litellm)
      write_litellm_config
      URL[$name]=http://127.0.0.1:18003/v1/chat/completions; KEY[$name]=$LITELLM_KEY; MODEL[$name]=fake-gpt
      # LITELLM_LOCAL_MODEL_COST_MAP: use the bundled price list instead of fetching one at start-up.
      start_target $name 18003 "$GW_CPU" env -C "$RUNDIR/litellm" LITELLM_LOCAL_MODEL_COST_MAP=True \
        LITELLM_LOG=ERROR PYTHONDONTWRITEBYTECODE=1 "$LL_VENV/bin/litellm" --config config.yaml \
        --host 127.0.0.1 --port 18003 --num_workers 1 --telemetry False --log_config log_config.json ;;
    *) die "unknown target $name (known: direct llmops aiohttp httpx litellm)" ;;
  esac
  ORDER+=("$name")
done

for name in "${ORDER[@]}"; do
  line=$(client check "${URL[$name]}" --key "${KEY[$name]}" --model "${MODEL[$name]}") \
    || die "$name does not answer like an OpenAI-compatible endpoint"
  log "$name answers: $line"
done

# ------------------------------------------------------------------ machine and versions
versions() {  # python venv-python packages...
  "$1" -c 'import importlib.metadata as m, sys
out = []
for p in sys.argv[1:]:
    try: out.append(f"{p}=={m.version(p)}")
    except m.PackageNotFoundError: pass
print(" ".join(out))' "${@:2}"
}
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "kernel=$(uname -r)"
  echo "cpus=$(nproc)"
  echo "cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)"
  echo "memory=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "python=$("$PY" --version 2>&1)"
  echo "python_speed=$(taskset -c "$GW_CPU" "$PY" -m timeit -n 20000 -r 5 'sum(range(1000))' 2>&1 | sed 's/^20000 loops, //')"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "gcc=$(gcc --version | head -1)"
  echo "llmops_venv=$(versions "$PY" llmops fastapi starlette uvicorn uvloop httptools pydantic aiohttp httpx orjson prometheus-client)"
  [ -x "$LL_VENV/bin/python" ] && echo "litellm_venv=$(versions "$LL_VENV/bin/python" litellm fastapi starlette uvicorn uvloop pydantic openai httpx aiohttp)"
  echo "layout=upstream and wrk on cpu $UP_CPU, gateways on cpu $GW_CPU; '1s' = concurrency 1 with the gateway on cpu $UP_CPU"
  echo "duration=$DURATION"; echo "warmup=$WARMUP"; echo "rounds=$ROUNDS"; echo "concs=$CONCS"; echo "modes=$MODES"
  echo "ttft_count=$TTFT_COUNT"; echo "targets=${ORDER[*]}"; echo "clk_tck=$(getconf CLK_TCK)"
} >"$OUT/meta.env"

# ------------------------------------------------------------------ load
printf 'round\tmode\ttarget\tconc\trequests\trps\tp50_us\tp90_us\tp99_us\tmax_us\tnon200\tsocket_errors\tcpu_ms_per_req\trss_kb\tsteal_ms\tforeign_cpu_ms\n' \
  >"$OUT/runs.tsv"

wrk_run() {  # name conc stream seconds outfile
  local threads=1 timed=(); [ "$2" -gt 1 ] && threads=2
  # wrk's own CPU time, so that CPU used by anything else on the machine can be told apart
  [ -x /usr/bin/time ] && timed=(/usr/bin/time -f 'WRKCPU %U %S')
  BENCH_KEY=${KEY[$1]} BENCH_MODEL=${MODEL[$1]} BENCH_STREAM=$3 timeout $(($4 + 30)) "${timed[@]}" \
    taskset -c "$UP_CPU" wrk -t$threads -c"$2" -d"$4s" --timeout 10s --latency -s "$BENCH/chat.lua" "${URL[$1]}" \
    >"$5" 2>&1 || log "wrk exited non-zero for $1 (see $5)"
}

measure() {  # round mode name label   (label: a concurrency, "1s" = 1 with the gateway on UP_CPU)
  local r=$1 mode=$2 name=$3 label=$4 conc=${4%s} stream=0 f c0 c1 s0 s1 b0 b1 u0=0 u1=0 rss res wrk_pid wrk_cpu
  [ "$mode" = stream ] && stream=1
  f="$OUT/wrk/$r-$mode-$name-c$label.txt"
  if [ "$label" != "$conc" ]; then pin_tree "${PID[$name]}" "$UP_CPU"; fi
  wrk_run "$name" "$conc" $stream "$WARMUP" "$f.warmup"
  c0=$(tree_cpu_ticks "${PID[$name]}"); s0=$(steal_ticks); b0=$(busy_ticks)
  [ "$name" = direct ] || u0=$(tree_cpu_ticks "${PID[upstream]}")
  wrk_run "$name" "$conc" $stream "$DURATION" "$f" &
  wrk_pid=$!
  sleep "$(awk -v d="$DURATION" 'BEGIN {print d / 2}')"
  rss=$(tree_sum VmRSS "${PID[$name]}")  # resident memory in the middle of the load
  wait $wrk_pid || true
  c1=$(tree_cpu_ticks "${PID[$name]}"); s1=$(steal_ticks); b1=$(busy_ticks)
  [ "$name" = direct ] || u1=$(tree_cpu_ticks "${PID[upstream]}")
  wrk_cpu=$(awk '/^WRKCPU/ {print ($2 + $3) * 1000}' "$f"); wrk_cpu=${wrk_cpu:-0}
  if [ "$label" != "$conc" ]; then pin_tree "${PID[$name]}" "${HOME_CPU[$name]}"; fi
  res=$(grep '^BENCHRESULT' "$f") || { log "no result for $r $mode $name c$label ($f)"; return 0; }
  awk -v r="$r" -v m="$mode" -v n="$name" -v c="$label" -v dc=$((c1 - c0)) -v ds=$((s1 - s0)) -v rss="$rss" \
    -v ours=$((c1 - c0 + u1 - u0)) -v busy=$((b1 - b0)) -v wrk_ms="$wrk_cpu" -v hz="$(getconf CLK_TCK)" '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      sock = v["err_connect"] + v["err_read"] + v["err_write"] + v["err_timeout"]
      cpu = v["requests"] > 0 ? dc * 1000 / hz / v["requests"] : 0
      foreign = (busy - ours) * 1000 / hz - wrk_ms  # CPU used by processes outside the benchmark
      printf "%s\t%s\t%s\t%s\t%d\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%.3f\t%d\t%d\t%d\n", r, m, n, c, v["requests"],
        v["rps"], v["p50_us"], v["p90_us"], v["p99_us"], v["max_us"], v["non200"], sock, cpu, rss, ds * 1000 / hz,
        foreign
    }' <<<"$res" >>"$OUT/runs.tsv"
  log "$r $mode $name c$label: $(tail -1 "$OUT/runs.tsv" | awk -F'\t' '{printf "%s req/s, p50 %.2f ms, p99 %.2f ms, errors %d", $6, $7/1000, $9/1000, $11 + $12}')"
  sleep 0.5
}

ttft_round() {  # round: sequential streams per target, gateway on the upstream's core like "1s"
  local r=$1 name res
  for name in "${ORDER[@]}"; do
    pin_tree "${PID[$name]}" "$UP_CPU"
    res=$(taskset -c "$UP_CPU" "$PY" "$BENCH/chat_client.py" ttft "${URL[$name]}" --key "${KEY[$name]}" \
      --model "${MODEL[$name]}" --count "$TTFT_COUNT") || log "ttft failed for $name"
    pin_tree "${PID[$name]}" "${HOME_CPU[$name]}"
    echo -e "$r\t$name\t$res" >>"$OUT/ttft.tsv"
    log "$r ttft $name: $res"
  done
}

log "load: rounds=$ROUNDS modes=($MODES) concs=($CONCS) targets=(${ORDER[*]}) ${DURATION}s + ${WARMUP}s warm-up per point"
: >"$OUT/ttft.tsv"
for r in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    for label in $CONCS; do
      for name in "${ORDER[@]}"; do measure "r$r" "$mode" "$name" "$label"; done
    done
  done
  ttft_round "r$r"
done

for name in "${ORDER[@]}"; do
  fact "$name" rss_end_kb "$(tree_sum VmRSS "${PID[$name]}")"
  fact "$name" rss_peak_kb "$(tree_sum VmHWM "${PID[$name]}")"
  fact "$name" threads "$(tree_sum Threads "${PID[$name]}")"
done

# ------------------------------------------------------------------ llmops: usage rows, start-up, CLI
if [ -n "${PID[llmops]:-}" ]; then
  DB=$RUNDIR/llmops-data/usage.db
  usage_rows() { sqlite3 -readonly "$DB" 'SELECT count(*) FROM usage_logs' 2>/dev/null || echo -1; }
  settled_rows() {  # the usage log is written off the request path: wait until the count stops moving
    local a b; a=$(usage_rows)
    for _ in $(seq 30); do sleep 0.2; b=$(usage_rows); [ "$a" = "$b" ] && break; a=$b; done
    echo "$a"
  }
  before=$(settled_rows)
  res=$(client burst "${URL[llmops]}" --key "${KEY[llmops]}" --model fake-gpt --count 2000 --concurrency 50) \
    || die "burst against llmops failed"
  after=$(settled_rows)
  ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$res")
  fact llmops burst "$res"
  fact llmops burst_responses "$ok"
  fact llmops burst_usage_rows $((after - before))
  log "llmops exact count: $res; usage rows added $((after - before))"
  # Every 200 the clients saw over the whole run, against the rows: wrk stops with calls in flight, whose
  # rows exist although wrk never counted the answer, so rows may exceed this by up to the concurrency per run.
  wrk_total=$(cat "$OUT"/wrk/*-llmops-*.txt* | sed -n 's/^BENCHRESULT requests=\([0-9]*\).*non200=\([0-9]*\).*/\1 \2/p' \
    | awk '{s += $1 - $2} END {print s + 0}')
  # plus the first 200 at start-up, the two answer checks, the TTFT calls and the burst
  counted=$((wrk_total + 1 + 2 + ROUNDS * (TTFT_COUNT + 20) + ok))
  fact llmops run_responses_counted "$counted"
  # Counters against rows, read after the log settled: every call is one row and one count, by status.
  "$PY" - "$DB" >>"$OUT/facts.tsv" <<'EOF'
import sqlite3
import sys
import urllib.request

text = urllib.request.urlopen("http://127.0.0.1:18010/metrics", timeout=10).read().decode()
counted = {"ok": 0.0, "all": 0.0}
for line in text.splitlines():
    if line.startswith("llmops_requests_total{"):
        value = float(line.rsplit(" ", 1)[1])
        counted["all"] += value
        counted["ok"] += value if 'status="ok"' in line else 0
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows_all, rows_ok = db.execute("SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM usage_logs").fetchone()
print(f"llmops\tmetrics_requests_all\t{int(counted['all'])}\nllmops\tusage_rows_all\t{rows_all}")
print(f"llmops\tmetrics_requests_ok\t{int(counted['ok'])}\nllmops\tusage_rows_ok\t{rows_ok}")
EOF
  log "llmops after the burst: $(grep -E 'llmops.(metrics_requests|usage_rows_)' "$OUT/facts.tsv" | cut -f2,3 | tr '\t\n' '= '); 200s counted by the clients over the run $counted"

  # `llmops --help` start-up and `llmops usage --last 5` on a log of USAGE_ROWS rows
  HELP_CMD="$VENV/bin/llmops --help"
  USAGE_DIR=$WORKDIR/usage-$USAGE_ROWS
  log "writing $USAGE_ROWS usage rows into $USAGE_DIR/usage.db"
  "$PY" "$BENCH/make_usage_db.py" --rows "$USAGE_ROWS" --data-dir "$USAGE_DIR" >>"$OUT/logs/make_usage_db.log" 2>&1 \
    || die "make_usage_db.py failed (logs/make_usage_db.log)"
  USAGE_CMD="$VENV/bin/llmops usage --last 5 --data-dir $USAGE_DIR"
  (cd "$RUNDIR" && $USAGE_CMD) >"$OUT/logs/usage-last5.txt" 2>&1 || die "'$USAGE_CMD' failed (logs/usage-last5.txt)"
  timed() {  # key command: median wall time of repeated runs (hyperfine when there is one)
    if command -v hyperfine >/dev/null; then
      (cd "$RUNDIR" && hyperfine -N --warmup 3 --runs 20 --export-json "$OUT/logs/$1.json" "$2") >>"$OUT/logs/hyperfine.log" 2>&1
      fact llmops "$1" "$("$PY" -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["results"][0]["median"], 4))' "$OUT/logs/$1.json")"
    else
      fact llmops "$1" "$(cd "$RUNDIR" && "$PY" -c '
import shlex, statistics, subprocess, sys, time
cmd = shlex.split(sys.argv[1]); times = []
for i in range(23):
    t = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True); t = time.perf_counter() - t
    if i >= 3: times.append(t)
print(round(statistics.median(times), 4))' "$2")"
    fi
  }
  timed help_s "$HELP_CMD"
  timed usage_last5_s "$USAGE_CMD"
  fact llmops usage_rows_in_log "$USAGE_ROWS"
  # where the CLI's start-up goes: Python's own import timing of both commands
  (cd "$RUNDIR" && "$PY" -X importtime -m llmops_cli --help >/dev/null 2>"$OUT/importtime-help.txt") || true
  (cd "$RUNDIR" && "$PY" -X importtime -m llmops_cli usage --last 5 --data-dir "$USAGE_DIR" \
    >/dev/null 2>"$OUT/importtime-usage.txt") || true

  if [ "$PROFILE" = 1 ]; then
    for mode in json stream; do
      stream=0; [ $mode = stream ] && stream=1
      log "py-spy: profiling llmops for ${PROFILE_SECONDS}s at concurrency 50, $mode"
      # --gil: only the thread holding the GIL, i.e. the work that competes with the event loop; without it
      # the usage writer's blocking queue.get() is sampled as if it were busy
      "$VENV/bin/py-spy" record --pid "${PID[llmops]}" --subprocesses --gil --rate 250 --duration "$PROFILE_SECONDS" \
        --format raw -o "$OUT/profile-$mode.txt" >>"$OUT/logs/py-spy.log" 2>&1 &
      spy=$!
      sleep 1
      wrk_run llmops 50 $stream "$PROFILE_SECONDS" "$OUT/wrk/profile-$mode.txt"
      wait $spy || log "py-spy failed (logs/py-spy.log)"
    done
  fi
fi

for name in "${ORDER[@]}"; do
  # llmops's request log has "error":null on every line: not an error
  [ "$name" = direct ] || grep -iE 'error|traceback' "$OUT/logs/$name.log" 2>/dev/null | grep -v '"error":null' \
    >"$OUT/logs/$name.errors" || true
done
cleanup
for f in "$OUT"/logs/*.log; do  # llmops's request log has a line per call: keep the head and the tail
  if [ "$(stat -c %s "$f")" -gt 5000000 ]; then
    { head -n 100 "$f"; echo "... (cut by run.sh) ..."; tail -n 1000 "$f"; } >"$f.cut" && mv "$f.cut" "$f"
  fi
done
"$PYTHON" "$BENCH/report.py" "$OUT"
log "done: $OUT/summary.md and $OUT/results.tsv"
