#!/usr/bin/env bash
# The load run of BENCHMARKS.md: trace-service on a private PostgreSQL, read by wrk with
# Zipf-distributed trace ids, by three instances side by side: without a cache, with the
# in-process cache, and with the tiered cache over a private Redis. The machine's speed
# swings, so the three take turns in short rounds; the table gives each one's medians over
# the rounds (requests/s, p50 and p99 latency), its database queries per request over all
# rounds, and the median per-round ratio of its requests/s to the uncached instance's.
#
#   bash crates/trace-service/load/load.sh
#
# Needs wrk (`apt-get install -y wrk`), curl, python3, redis-server and PostgreSQL's server
# programs (`apt-get install -y postgresql`). Everything runs on 127.0.0.1, on free ports,
# in a temporary directory removed at the end; nothing touches a PostgreSQL or Redis that is
# already running. Settings (environment): TRACES (10000), SPANS (20 per trace), ZIPF_S
# (1.0), THREADS (2), CONNECTIONS (32), ROUNDS (5), DURATION (10s per instance and round),
# WARMUP (5s per instance, before the rounds).
set -euo pipefail
cd "$(dirname "$0")/../../.."

TRACES=${TRACES:-10000}
SPANS=${SPANS:-20}
ZIPF_S=${ZIPF_S:-1.0}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-5s}
export TRACES ZIPF_S
here=crates/trace-service/load

for tool in wrk curl python3 redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done
pg_bin=$(dirname "$(command -v initdb || ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)")
[ -x "$pg_bin/pg_ctl" ] || { echo "PostgreSQL's server is missing: apt-get install -y postgresql" >&2; exit 1; }

echo "== building trace-service (release)"
cargo build --release -p trace-service
service_bin=target/release/trace-service

work=$(mktemp -d /tmp/trace-service-load.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root: run it as the user Debian's package creates.
  chown postgres: "$work"
  as_pg=(runuser -u postgres --)
fi
service_pids=()
redis_pid=""
cleanup() {
  for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
  [ ! -d "$work/pg" ] || (cd "$work" && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== private PostgreSQL"
(cd "$work" && "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust \
  --encoding=UTF8 --locale=C --no-sync >/dev/null)
pg_port=$(free_port)
# fsync off: only the seeding writes, and the data is thrown away afterwards.
(cd "$work" && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o \
  "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$work -c fsync=off" \
  start >/dev/null)
"$pg_bin/postgres" --version
database_url="postgres://postgres@127.0.0.1:$pg_port/postgres"

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!

# Starts an instance with CACHE_URL=$1 and waits until it answers; its URL goes to $url.
start_service() {
  local port
  port=$(free_port)
  DATABASE_URL=$database_url CACHE_URL=$1 BIND=127.0.0.1:$port \
    "$service_bin" 2>>"$work/service.log" &
  service_pids+=($!)
  url="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -fs "$url/health" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the service did not start:" >&2
  cat "$work/service.log" >&2
  exit 1
}

db_queries() {
  curl -fs "$1/metrics" | awk '$1 == "trace_service_db_queries_total" { print $2 }'
}

names=(none memory tiered)
declare -A urls
start_service none && urls[none]=$url
start_service "memory://?max_capacity=100000&name=traces" && urls[memory]=$url
start_service "tiered+redis://127.0.0.1:$redis_port/0?namespace=trace-service:&l1_max_capacity=100000&l1_ttl=60s&name=traces" && urls[tiered]=$url

echo "== seeding $TRACES traces of $SPANS spans"
python3 "$here/seed.py" "${urls[none]}" "$TRACES" "$SPANS"

echo "== load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION per instance, $ROUNDS rounds (after a $WARMUP warm-up each), Zipf s=$ZIPF_S over $TRACES ids"
for name in "${names[@]}"; do
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$here/zipf.lua" "${urls[$name]}" >/dev/null
done
: >"$work/runs"
for round in $(seq "$ROUNDS"); do
  for name in "${names[@]}"; do
    base=${urls[$name]}
    before=$(db_queries "$base")
    line=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$here/zipf.lua" "$base" | grep '^requests=')
    after=$(db_queries "$base")
    echo "round=$round cache=$name $line queries=$((after - before))" | tee -a "$work/runs"
  done
done

echo
echo "load average after the runs (other work on the machine shows here): $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/runs" <<'PY'
import statistics, sys
runs = [dict(f.split("=") for f in line.split()) for line in open(sys.argv[1])]
for r in runs:
    if int(r["errors"]) or int(r["non2xx"]):
        sys.exit(f"errors in a run: {r}")
    r["rps"] = int(r["requests"]) / (int(r["duration_us"]) / 1e6)
rps_none = {r["round"]: r["rps"] for r in runs if r["cache"] == "none"}
labels = {"none": "none", "memory": "memory", "tiered": "tiered (memory over redis)"}
print("| cache | requests/s | vs none | p50 ms | p99 ms | DB queries/request |")
print("|---|---:|---:|---:|---:|---:|")
for name, label in labels.items():
    mine = [r for r in runs if r["cache"] == name]
    med = lambda key: statistics.median(float(r[key]) for r in mine)
    ratio = statistics.median(r["rps"] / rps_none[r["round"]] for r in mine)
    queries = sum(int(r["queries"]) for r in mine) / sum(int(r["requests"]) for r in mine)
    print(f"| {label} | {med('rps'):.0f} | {ratio:.2f}x | {med('p50_us') / 1e3:.2f} "
          f"| {med('p99_us') / 1e3:.2f} | {queries:.4f} |")
PY
