#!/usr/bin/env bash
# bench/serve/run.sh: `engage serve` answering GET /v1/customers/{id}/prediction for random
# customers, against two references in the same run under the same wrk load:
#   nginx    returning one fixed body of the same size (no lookup: the ceiling of HTTP here);
#   Node.js  a minimal `http` server answering from an in-memory Map of the same customers
#            (one process, the reference; also the `cluster` module with one worker per core).
# Then an overload run (10x the connections against a small --max-connections: Engage must
# shed with 503s) and a normal run right after it, proving the server recovered.
#
# Sets up a private ENGAGE_HOME in a temp dir: a tiny generated data set through the pipeline
# (registers and promotes engagement version 1), then a synthetic predictions table of
# --customers rows for version 1 (make_predictions.cc), `engage publish`, an API key.
# Builds the release preset (incremental); writes bench/results/serve.json (serve-<N>.json
# for other --customers); the last line printed is the JSON object. Exits 1, after writing the
# file, if any answer of a main run is not a 2xx or wrk saw socket errors.
#
# --customers 100000000 runs too: publish streams (its memory does not grow with the table),
# the snapshot takes ~6 GB, and Node.js holds at most BENCH_NODE_MAX_CUSTOMERS (default
# 2,000,000) customers and is asked only for those. Before serving, the snapshot file is read
# once so the page cache holds it, as it would on a server that has been up for a while (the
# server still maps each page on its first touch); the JSON says how long that took.
#
# Options: --customers N (default 1000000), --duration S (10), --connections C (32),
#   --overload / --no-overload (default: run it), --max-connections M (64, overload run),
#   --light-connections L (4: the light-load run below; 0 skips it),
#   --no-cluster (skip the Node.js cluster run), --keep (keep the temp dir), --work DIR
#   (where the temp dir goes; default $TMPDIR or /tmp). BENCH_REPS (default 3): rounds; each
#   round runs every server once, in turn, and medians are reported.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/bench/serve"
build="$root/build/release"
program="bench/serve/run.sh"

customers=1000000
duration=10
connections=32
wrk_threads=2
overload=1
max_connections=64
light_connections=4
node_cluster=1
keep=0
work_parent="${TMPDIR:-/tmp}"
reps="${BENCH_REPS:-3}"
warmup=3
# The Node.js reference keeps every body in memory (~0.75 GB per million customers per
# process): above this it holds only this many customers and the JSON says so (node_customers).
node_max_customers="${BENCH_NODE_MAX_CUSTOMERS:-2000000}"

while [ $# -gt 0 ]; do
  case "$1" in
    --customers) customers="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --overload) overload=1; shift ;;
    --no-overload) overload=0; shift ;;
    --max-connections) max_connections="$2"; shift 2 ;;
    --light-connections) light_connections="$2"; shift 2 ;;
    --no-cluster) node_cluster=0; shift ;;
    --keep) keep=1; shift ;;
    --work) work_parent="$2"; shift 2 ;;
    *) printf '%s: unknown option %s\n' "$program" "$1" >&2; exit 2 ;;
  esac
done

die() { printf '%s: %s\n' "$program" "$*" >&2; exit 1; }
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for tool in wrk nginx node curl g++; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    die "$tool is missing: run scripts/install-deps --bench"
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
cores="$(nproc)"

# Always (re)build: an incremental build is quick and a stale binary would measure old code.
if [ ! -d "$build" ]; then
  "$root/scripts/install-deps" --bench
  cmake --preset release -S "$root" >/dev/null
fi
cmake --build "$build" --target engage -j 2 >/dev/null
engage_bin="$build/engage"

work="$(mktemp -d "$work_parent/engage-serve-bench.XXXXXX")"
home="$work/home"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

engage() { "$engage_bin" --home "$home" "$@"; }
json_get() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v[k];console.log(typeof v==="object"?JSON.stringify(v):v)})' "$1"; }
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Waits until `url` answers (any HTTP status) or the process `pid` exits.
wait_http() {
  local url="$1" pid="$2" name="$3"
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited before answering; see $work/$name.log"
    sleep 0.1
  done
  die "$name did not answer within 60 s"
}
wait_port_file() {
  local file="$1" pid="$2" name="$3"
  for _ in $(seq 1 3000); do
    [ -s "$file" ] && { cat "$file"; return 0; }
    kill -0 "$pid" 2>/dev/null || die "$name exited before listening; see $work/$name.log"
    sleep 0.1
  done
  die "$name did not listen within 300 s"
}
stop() {
  local pid="$1"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Milliseconds from a wrk latency ("245.00us", "1.23ms", "2.00s", "1.50m").
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000;
    else if (v ~ /s$/) n *= 1000;
    printf "%.3f", n }'
}

# run_wrk NAME URL CONNECTIONS SECONDS [IDS]: runs wrk (random ids in [0, IDS), by default
# [0, customers)), keeps its output in $work/wrk-NAME.txt and
# sets rps, requests, p50, p75, p90, p99 (ms), non2xx, sockerr (connect+read+write+timeout),
# statuses.
run_wrk() {
  local name="$1" url="$2" conns="$3" secs="$4" ids="${5:-$customers}" out="$work/wrk-$1.txt"
  BENCH_CUSTOMERS="$ids" BENCH_TOKEN="${token:-}" \
    wrk -t "$wrk_threads" -c "$conns" -d "${secs}s" --latency -s "$here/random_ids.lua" "$url" \
    >"$out" 2>&1 || die "wrk failed against $name: $(cat "$out")"
  rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
  requests="$(awk '/ requests in / { print $1 }' "$out")"
  [ -n "$rps" ] || die "no Requests/sec in wrk's output: $(cat "$out")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
  p75="$(to_ms "$(awk '$1 == "75%" { print $2 }' "$out")")"
  p90="$(to_ms "$(awk '$1 == "90%" { print $2 }' "$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
  non2xx="${non2xx:-0}"
  sockerr="$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")"
  sockerr="${sockerr:-0}"
  statuses="$(awk '/^STATUS_COUNTS / { print $2 }' "$out")"
  [ -n "$statuses" ] || statuses='{}'
}

# CPU time (user + system, in clock ticks) of a process and its direct children (nginx's and
# the Node.js cluster's workers): with the requests served, the server's CPU cost per request,
# which a machine shared with other work disturbs much less than requests/s.
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() {
  local pids pid
  pids="$1 $(cat /proc/"$1"/task/*/children 2>/dev/null || true)"
  for pid in $pids; do cat "/proc/$pid/stat" 2>/dev/null || true; done |
    sed 's/^.*) //' | awk '{ t += $12 + $13 } END { print t + 0 }'
}
cpu_us_per_request() {  # cpu_us_per_request TICKS_BEFORE TICKS_AFTER REQUESTS
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$clk_tck" \
    'BEGIN { printf "%.2f", (n > 0 ? (b - a) * 1e6 / hz / n : 0) }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_kind_mb() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? "true" : "false") }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? "true" : "false") }'; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "serve bench: $customers customers, $cores cores, wrk -t$wrk_threads -c$connections" \
  "-d${duration}s, $reps round(s); load average $load_before; temp dir $work"

# --- 1. A home with engagement version 1 registered, and the synthetic predictions ---------
t0="$(now)"
engage init >"$work/setup.log" 2>&1 || die "engage init failed: $(cat "$work/setup.log")"
engage gen --customers 3000 --days 240 --seed 5 --out "$work/data" >>"$work/setup.log" 2>&1 ||
  die "engage gen failed: $(tail "$work/setup.log")"
engage run pipeline --name bench --json --ingest "customers=$work/data/customers.parquet" \
  --ingest "events=$work/data/events/*.parquet" >"$work/pipeline.json" 2>>"$work/setup.log" ||
  die "the pipeline failed (it registers engagement version 1): $(tail "$work/setup.log")"
[ "$(json_get output.version <"$work/pipeline.json")" = 1 ] ||
  die "the pipeline did not register engagement version 1: $(head -c 2000 "$work/pipeline.json")"
setup_seconds="$(elapsed "$t0")"

g++ -std=c++20 -O1 "$here/make_predictions.cc" -I "$root/third_party/duckdb/include" \
  -L "$root/third_party/duckdb/lib" -lduckdb -Wl,-rpath,"$root/third_party/duckdb/lib" \
  -o "$work/make_predictions"
# Later than the pipeline's scoring run, so publish takes these rows for version 1.
sleep 1
scored_at="$(date -u '+%Y-%m-%d %H:%M:%S')"
t0="$(now)"
"$work/make_predictions" --customers "$customers" --out "$work/predictions.parquet" \
  --scored-at "$scored_at" --temp "$work/duck-tmp"
gen_seconds="$(elapsed "$t0")"
t0="$(now)"
engage ingest predictions "$work/predictions.parquet" >"$work/ingest.log" 2>&1 ||
  die "ingesting the predictions failed: $(tail "$work/ingest.log")"
ingest_seconds="$(elapsed "$t0")"
rm -f "$work/predictions.parquet"
t0="$(now)"
# Peak RSS of `engage publish` (it reads the whole scoring run) when GNU time is there.
timed=()
[ -x /usr/bin/time ] && timed=(/usr/bin/time -f '%M' -o "$work/publish.maxrss")
"${timed[@]}" "$engage_bin" --home "$home" publish --model engagement@1 --json \
  >"$work/publish.json" 2>"$work/publish.log" ||
  die "engage publish failed: $(tail "$work/publish.log")"
publish_wall_seconds="$(elapsed "$t0")"
publish_peak_rss_mb="null"
[ -s "$work/publish.maxrss" ] &&
  publish_peak_rss_mb="$(awk '{ v = $1 } END { printf "%.0f", v / 1024 }' "$work/publish.maxrss")"
published="$(json_get snapshot.versions.0.customers <"$work/publish.json")"
[ "$published" = "$customers" ] || die "published $published customers, expected $customers"
bytes_per_customer="$(json_get bytes_per_customer <"$work/publish.json")"
snapshot_bytes="$(json_get snapshot.bytes <"$work/publish.json")"
publish_seconds="$(json_get seconds <"$work/publish.json" | awk '{ printf "%.1f", $1 }')"
printf '{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}\n' >"$work/policy.json"
token="$(engage keys create --name bench --policy "$work/policy.json" --json 2>>"$work/setup.log" |
  json_get token)"
[ -n "$token" ] || die "engage keys create printed no token"
log "setup: pipeline ${setup_seconds} s; $customers predictions: generated ${gen_seconds} s," \
  "ingested ${ingest_seconds} s, published ${publish_seconds} s (peak RSS $publish_peak_rss_mb MB);" \
  "snapshot $snapshot_bytes bytes, $bytes_per_customer bytes per customer"

# --- 2. The servers --------------------------------------------------------------------------
t0="$(now)"
snapshot_dir="$home/serving/snapshots/$(tr -d '[:space:]' <"$home/serving/CURRENT")"
cat "$snapshot_dir/data.mdb" >/dev/null
warm_seconds="$(elapsed "$t0")"
log "page cache: read the ${snapshot_bytes}-byte snapshot in ${warm_seconds} s"
start_engage() {  # start_engage NAME [extra flags]: sets engage_pid, engage_url
  local name="$1"
  shift
  rm -f "$work/$name.port"
  "$engage_bin" --home "$home" serve --port 0 --port-file "$work/$name.port" --rate-limit 0 \
    --threads "$cores" "$@" >"$work/$name.log" 2>&1 &
  engage_pid=$!
  pids+=("$engage_pid")
  engage_url="http://127.0.0.1:$(wait_port_file "$work/$name.port" "$engage_pid" "$name")"
  wait_http "$engage_url/readyz" "$engage_pid" "$name"
}

start_engage engage
engage_rss_idle_mb="$(rss_mb "$engage_pid")"
sample="$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $token" \
  "$engage_url/v1/customers/$((customers / 2))/prediction")"
[ "$(printf '%s' "$sample" | tail -n 1)" = 200 ] ||
  die "engage did not answer 200 for customer $((customers / 2)): $sample"
body="$(printf '%s' "$sample" | head -n 1)"
body_bytes="${#body}"

nginx_port="$(free_port)"
conf="$(cat "$here/nginx.conf")"
conf="${conf//@WORKERS@/$cores}"
conf="${conf//@DIR@/$work}"
conf="${conf//@PORT@/$nginx_port}"
conf="${conf//@BODY@/$body}"
printf '%s\n' "$conf" >"$work/nginx.conf"
"$nginx_bin" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" >"$work/nginx.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
nginx_url="http://127.0.0.1:$nginx_port"
wait_http "$nginx_url/" "$nginx_pid" nginx

node_customers=$((customers < node_max_customers ? customers : node_max_customers))
start_node() {  # start_node NAME WORKERS: sets node_pid, node_url
  rm -f "$work/$1.port"
  node --max-old-space-size=65536 "$here/node_server.js" --customers "$node_customers" \
    --port-file "$work/$1.port" --workers "$2" >"$work/$1.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  node_url="http://127.0.0.1:$(wait_port_file "$work/$1.port" "$node_pid" "$1")"
  wait_http "$node_url/" "$node_pid" "$1"
}
start_node node 0
node_single_pid="$node_pid"
node_single_url="$node_url"
node_bytes="$(curl -s "$node_single_url/v1/customers/1/prediction" | wc -c)"
node_rss_mb="$(rss_mb "$node_single_pid")"
cluster_url=""
if [ "$node_cluster" = 1 ]; then
  start_node node-cluster "$cores"
  cluster_url="$node_url"
fi
log "bodies: engage $body_bytes bytes, nginx $body_bytes bytes (the same), node $node_bytes bytes"

# --- 3. The main runs: every server in turn, BENCH_REPS rounds ------------------------------
declare -A urls=([engage]="$engage_url" [nginx]="$nginx_url" [node]="$node_single_url")
declare -A server_pids=([engage]="$engage_pid" [nginx]="$nginx_pid" [node]="$node_single_pid")
declare -A id_range=([engage]="$customers" [nginx]="$customers" [node]="$node_customers")
names=(engage nginx node)
if [ -n "$cluster_url" ]; then
  urls[node_cluster]="$cluster_url"
  server_pids[node_cluster]="$node_pid"
  id_range[node_cluster]="$node_customers"
  names+=(node_cluster)
fi
declare -A all_rps all_p50 all_p99 all_p75 all_p90 all_cpu
for name in "${names[@]}"; do
  # Warm-up: page faults into the snapshot, V8's JIT, TCP.
  run_wrk "$name-warmup" "${urls[$name]}" "$connections" "$warmup" "${id_range[$name]}"
done
failed=""
for rep in $(seq 1 "$reps"); do
  for name in "${names[@]}"; do
    ticks0="$(cpu_ticks "${server_pids[$name]}")"
    run_wrk "$name-$rep" "${urls[$name]}" "$connections" "$duration" "${id_range[$name]}"
    cpu_us="$(cpu_us_per_request "$ticks0" "$(cpu_ticks "${server_pids[$name]}")" "$requests")"
    all_cpu[$name]+=" $cpu_us"
    if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then
      failed+=" $name (round $rep: $non2xx non-2xx, $sockerr socket errors)"
    fi
    all_rps[$name]+=" $rps"
    all_p50[$name]+=" $p50"
    all_p75[$name]+=" $p75"
    all_p90[$name]+=" $p90"
    all_p99[$name]+=" $p99"
    log "round $rep: $name $rps req/s, p50 $p50 ms, p99 $p99 ms, $cpu_us CPU us per request"
  done
done
engage_rss_mb="$(rss_mb "$engage_pid")"
engage_rss_anon_mb="$(rss_kind_mb "$engage_pid" RssAnon)"
engage_rss_file_mb="$(rss_kind_mb "$engage_pid" RssFile)"
declare -A m_rps m_p50 m_p75 m_p90 m_p99 m_cpu
for name in "${names[@]}"; do
  # shellcheck disable=SC2086 # word splitting intended: the values of each round
  {
    m_rps[$name]="$(median ${all_rps[$name]})"
    m_p50[$name]="$(median ${all_p50[$name]})"
    m_p75[$name]="$(median ${all_p75[$name]})"
    m_p90[$name]="$(median ${all_p90[$name]})"
    m_p99[$name]="$(median ${all_p99[$name]})"
    m_cpu[$name]="$(median ${all_cpu[$name]})"
  }
done
# Light load: L connections from one wrk thread leave the cores room, so the latency is the
# servers' own rather than the wait for a core the 32-connection runs measure (there the mean
# is connections / throughput by Little's law, whatever the server).
light_json="null"
if [ "$light_connections" -gt 0 ]; then
  wrk_threads_main="$wrk_threads"
  wrk_threads=1
  run_wrk light-engage "$engage_url" "$light_connections" "$duration"
  l_e_rps="$rps" l_e_p50="$p50" l_e_p99="$p99"
  run_wrk light-nginx "$nginx_url" "$light_connections" "$duration"
  l_n_rps="$rps" l_n_p50="$p50" l_n_p99="$p99"
  wrk_threads="$wrk_threads_main"
  log "light load (wrk -t1 -c$light_connections): engage $l_e_rps req/s, p50 $l_e_p50 ms," \
    "p99 $l_e_p99 ms; nginx $l_n_rps req/s, p50 $l_n_p50 ms, p99 $l_n_p99 ms"
  light_json="$(printf '{"connections":%s,"engage_rps":%s,"engage_p50_ms":%s,"engage_p99_ms":%s,"nginx_rps":%s,"nginx_p50_ms":%s,"nginx_p99_ms":%s}' \
    "$light_connections" "$l_e_rps" "$l_e_p50" "$l_e_p99" "$l_n_rps" "$l_n_p50" "$l_n_p99")"
fi
stop "$engage_pid"
stop "$nginx_pid"
stop "$node_single_pid"
[ -n "$cluster_url" ] && stop "$node_pid"

# --- 4. Overload: 10x the connections against a small connection cap, then a normal run ----
overload_json="null"
if [ "$overload" = 1 ]; then
  overload_connections=$((connections * 10))
  start_engage engage-overload --max-connections "$max_connections"
  run_wrk engage-warmup-overload "$engage_url" "$connections" "$warmup"
  BENCH_COUNT_STATUS=1 run_wrk overload "$engage_url" "$overload_connections" "$duration"
  o_rps="$rps" o_p50="$p50" o_p99="$p99" o_non2xx="$non2xx" o_sockerr="$sockerr"
  o_statuses="$statuses"
  o_rss_mb="$(rss_mb "$engage_pid")"
  run_wrk recovery "$engage_url" "$connections" "$duration"
  r_rps="$rps" r_p50="$p50" r_p99="$p99" r_non2xx="$non2xx" r_sockerr="$sockerr"
  recovered="$([ "$r_non2xx" = 0 ] && [ "$r_sockerr" = 0 ] && echo true || echo false)"
  log "overload: wrk -c$overload_connections against --max-connections $max_connections:" \
    "$o_rps req/s, $o_non2xx non-2xx (statuses $o_statuses), $o_sockerr socket errors;" \
    "then -c$connections: $r_rps req/s, p99 $r_p99 ms, $r_non2xx non-2xx"
  stop "$engage_pid"
  overload_json="$(printf '{"connections":%s,"max_connections":%s,"seconds":%s,"rps":%s,"p50_ms":%s,"p99_ms":%s,"non_2xx":%s,"socket_errors":%s,"statuses":%s,"rss_mb":%s,"recovery":{"connections":%s,"rps":%s,"p50_ms":%s,"p99_ms":%s,"non_2xx":%s,"socket_errors":%s,"recovered":%s}}' \
    "$overload_connections" "$max_connections" "$duration" "$o_rps" "$o_p50" "$o_p99" \
    "$o_non2xx" "$o_sockerr" "$o_statuses" "$o_rss_mb" "$connections" "$r_rps" "$r_p50" \
    "$r_p99" "$r_non2xx" "$r_sockerr" "$recovered")"
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- 5. Report ------------------------------------------------------------------------------
ratio_vs_nginx="$(ratio "${m_rps[engage]}" "${m_rps[nginx]}")"
ratio_vs_node="$(ratio "${m_rps[engage]}" "${m_rps[node]}")"
ratio_vs_cluster="null"
[ -n "$cluster_url" ] && ratio_vs_cluster="$(ratio "${m_rps[engage]}" "${m_rps[node_cluster]}")"
met_nginx="$(ge "$ratio_vs_nginx" 0.8)"
met_node="$(ge "$ratio_vs_node" 1.8)"
met_p99="$(le "${m_p99[engage]}" 0.5)"

{
  printf '\n%-14s %12s %9s %9s %9s %9s %12s\n' server "req/s" "p50 ms" "p75 ms" "p90 ms" \
    "p99 ms" "CPU us/req"
  for name in "${names[@]}"; do
    printf '%-14s %12.0f %9.3f %9.3f %9.3f %9.3f %12.2f\n' "$name" "${m_rps[$name]}" \
      "${m_p50[$name]}" "${m_p75[$name]}" "${m_p90[$name]}" "${m_p99[$name]}" "${m_cpu[$name]}"
  done
  printf '\nmedians of %s round(s) of wrk -t%s -c%s -d%ss, random ids among %s customers\n' \
    "$reps" "$wrk_threads" "$connections" "$duration" "$customers"
  printf 'engage / nginx        %.2fx  (goal >= 0.8: %s)\n' "$ratio_vs_nginx" "$met_nginx"
  printf 'engage / node         %.2fx  (goal >= 1.8: %s)\n' "$ratio_vs_node" "$met_node"
  [ "$node_customers" = "$customers" ] ||
    printf '  (Node.js held and was asked for %s customers only: BENCH_NODE_MAX_CUSTOMERS)\n' \
      "$node_customers"
  [ -n "$cluster_url" ] && printf 'engage / node cluster %.2fx\n' "$ratio_vs_cluster"
  printf 'engage p99            %.3f ms (goal <= 0.5: %s)\n' "${m_p99[engage]}" "$met_p99"
  # Little's law: wrk keeps every connection waiting for its answer, so the mean latency is
  # connections / throughput, and no p99 can be below the mean.
  printf 'mean latency          %.3f ms engage, %.3f ms nginx (= %s connections / req/s)\n' \
    "$(awk -v c="$connections" -v x="${m_rps[engage]}" 'BEGIN { print c / x * 1000 }')" \
    "$(awk -v c="$connections" -v x="${m_rps[nginx]}" 'BEGIN { print c / x * 1000 }')" \
    "$connections"
  printf 'engage RSS            %s MB after the runs (%s MB anonymous, %s MB file-backed' \
    "$engage_rss_mb" "$engage_rss_anon_mb" "$engage_rss_file_mb"
  printf ' snapshot pages); %s MB idle\n' "$engage_rss_idle_mb"
  printf 'snapshot              %s bytes, %.1f bytes per customer\n' "$snapshot_bytes" \
    "$bytes_per_customer"
  printf 'load average          %s before, %s after (%s cores)\n' "$load_before" "$load_after" \
    "$cores"
} >&2

cpu_json="{"
for name in "${names[@]}"; do cpu_json+="\"$name\":${m_cpu[$name]},"; done
cpu_json="${cpu_json%,}}"
cluster_fields=""
if [ -n "$cluster_url" ]; then
  cluster_fields="$(printf '"node_cluster_rps":%s,"node_cluster_p50_ms":%s,"node_cluster_p99_ms":%s,"node_cluster_workers":%s,"ratio_vs_node_cluster":%s,' \
    "${m_rps[node_cluster]}" "${m_p50[node_cluster]}" "${m_p99[node_cluster]}" "$cores" \
    "$ratio_vs_cluster")"
fi
json="$(printf '{"bench":"serve","customers":%s,"cores":%s,"wrk":"-t%s -c%s -d%ss --latency","rounds":%s,"engage_rps":%s,"engage_p50_ms":%s,"engage_p75_ms":%s,"engage_p90_ms":%s,"engage_p99_ms":%s,"nginx_rps":%s,"nginx_p50_ms":%s,"nginx_p99_ms":%s,"node_rps":%s,"node_p50_ms":%s,"node_p99_ms":%s,"node_customers":%s,"node_rss_mb":%s,%s"cpu_us_per_request":%s,"ratio_vs_nginx":%s,"ratio_vs_node":%s,"body_bytes":%s,"node_body_bytes":%s,"bytes_per_customer":%s,"snapshot_bytes":%s,"engage_rss_mb":%s,"engage_rss_anon_mb":%s,"engage_rss_file_mb":%s,"engage_rss_idle_mb":%s,"setup_seconds":{"pipeline":%s,"generate":%s,"ingest":%s,"publish":%s,"publish_wall":%s,"warm_page_cache":%s},"publish_peak_rss_mb":%s,"goals":{"vs_nginx":0.8,"vs_node":1.8,"p99_ms":0.5},"met":{"vs_nginx":%s,"vs_node":%s,"p99_ms":%s},"load_average":{"before":"%s","after":"%s"},"light":%s,"overload":%s}' \
  "$customers" "$cores" "$wrk_threads" "$connections" "$duration" "$reps" "${m_rps[engage]}" \
  "${m_p50[engage]}" "${m_p75[engage]}" "${m_p90[engage]}" "${m_p99[engage]}" \
  "${m_rps[nginx]}" "${m_p50[nginx]}" "${m_p99[nginx]}" "${m_rps[node]}" "${m_p50[node]}" \
  "${m_p99[node]}" "$node_customers" "$node_rss_mb" "$cluster_fields" "$cpu_json" "$ratio_vs_nginx" \
  "$ratio_vs_node" "$body_bytes" "$node_bytes" "$bytes_per_customer" "$snapshot_bytes" \
  "$engage_rss_mb" "$engage_rss_anon_mb" "$engage_rss_file_mb" "$engage_rss_idle_mb" \
  "$setup_seconds" "$gen_seconds" "$ingest_seconds" "$publish_seconds" \
  "$publish_wall_seconds" "$warm_seconds" "$publish_peak_rss_mb" "$met_nginx" "$met_node" "$met_p99" "$load_before" "$load_after" "$light_json" \
  "$overload_json")"
mkdir -p "$root/bench/results"
results="$root/bench/results/serve.json"
[ "$customers" = 1000000 ] || results="$root/bench/results/serve-$customers.json"
printf '%s\n' "$json" >"$results"
[ -z "$failed" ] || die "answers that were not 2xx (or socket errors) in the main runs:$failed"
printf '%s\n' "$json"
