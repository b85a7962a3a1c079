#!/usr/bin/env bash
# A Dask cluster on one host: one `dask scheduler` and N `dask worker` processes, the same
# commands a multi-host cluster runs (start the workers on other hosts with the address
# printed here). Linux (uses setsid so that each process group can be stopped alone).
#
#   deploy/local-cluster.sh start [--workers N] [--threads T] [--memory-limit SIZE]
#                                 [--blas-threads B] [--host H] [--port P] [--dashboard-port D]
#                                 [--dir DIR] [--timeout SECONDS] [--idle-timeout SECONDS]
#   deploy/local-cluster.sh stop  [--dir DIR]
#
# start prints `DASK_SCHEDULER_ADDRESS=tcp://...` and the dashboard address, and writes
# DIR/scheduler.json (the connection file), DIR/*.pid and DIR/*.log. Defaults: 2 workers of
# 1 thread, memory limit "auto" (the host's memory shared among the workers), BLAS threads 1,
# host 127.0.0.1, port 8786, dashboard 8787 (0 = any free port), DIR ./dask-cluster, 60 s to
# start; --idle-timeout stops the scheduler after that long without work (default: never),
# and workers exit 60 s after losing their scheduler.
set -euo pipefail

usage() { echo "usage:" >&2; sed -n '6,9p' "$0" | cut -c2- >&2; exit 2; }

command=${1:-}
[[ $command == start || $command == stop ]] || usage
shift
workers=2 threads=1 memory=auto blas=1 host=127.0.0.1 port=8786 dashboard=8787 dir=dask-cluster timeout=60 idle=()
while (($#)); do
  case $1 in
    --workers) workers=$2 ;;
    --threads) threads=$2 ;;
    --memory-limit) memory=$2 ;;
    --blas-threads) blas=$2 ;;
    --host) host=$2 ;;
    --port) port=$2 ;;
    --dashboard-port) dashboard=$2 ;;
    --dir) dir=$2 ;;
    --timeout) timeout=$2 ;;
    --idle-timeout) idle=(--idle-timeout "$2s") ;;
    *) usage ;;
  esac
  shift 2 || usage
done
python=${PYTHON:-python3}

stop_group() {  # stop_group PIDFILE: SIGTERM the process group, SIGKILL it after 10 s
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -TERM -- "-$pid" 2>/dev/null || { rm -f "$1"; return 0; }
  for _ in $(seq 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$1"
}

if [[ $command == stop ]]; then
  for pidfile in "$dir"/worker-*.pid "$dir"/scheduler.pid; do
    [[ -e $pidfile ]] && stop_group "$pidfile"
  done
  rm -f "$dir/scheduler.json"
  exit 0
fi

mkdir -p "$dir"
[[ -e $dir/scheduler.pid ]] && { echo "local-cluster: $dir/scheduler.pid exists: stop that cluster first" >&2; exit 1; }
rm -f "$dir/scheduler.json"
# Each worker's nanny sets these in its worker process (distributed's default is 1 each).
export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{'MALLOC_TRIM_THRESHOLD_': 65536, \
'OMP_NUM_THREADS': $blas, 'OPENBLAS_NUM_THREADS': $blas, 'MKL_NUM_THREADS': $blas}"

setsid dask scheduler --host "$host" --port "$port" --dashboard-address "$host:$dashboard" "${idle[@]}" \
  --scheduler-file "$dir/scheduler.json" >"$dir/scheduler.log" 2>&1 &
echo $! >"$dir/scheduler.pid"
for _ in $(seq $((timeout * 10))); do [[ -s $dir/scheduler.json ]] && break; sleep 0.1; done
[[ -s $dir/scheduler.json ]] || { echo "local-cluster: no scheduler after ${timeout}s, see $dir/scheduler.log" >&2; exit 1; }

for i in $(seq "$workers"); do
  setsid dask worker --scheduler-file "$dir/scheduler.json" --name "worker-$i" --nthreads "$threads" \
    --memory-limit "$memory" --host "$host" --local-directory "$dir/worker-$i" --no-dashboard --death-timeout 60 \
    >"$dir/worker-$i.log" 2>&1 &
  echo $! >"$dir/worker-$i.pid"
done

"$python" - "$dir/scheduler.json" "$workers" "$timeout" <<'EOF'
import sys
from distributed import Client

scheduler_file, workers, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with Client(scheduler_file=scheduler_file, timeout=timeout) as client:
    client.wait_for_workers(workers, timeout=timeout)
    print(f"DASK_SCHEDULER_ADDRESS={client.scheduler.address}")
    print(f"dashboard: {client.dashboard_link}")
    print(f"workers: {len(client.nthreads())} x {next(iter(client.nthreads().values()))} threads")
EOF
