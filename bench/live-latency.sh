#!/usr/bin/env bash
# Latency, from listen() returning in a test process, over N TCP listeners opened one by one in
# a network namespace of the benchmark's own (and a cgroup of its own), ROUNDS times:
#
#  1. the kernel event source (internal/kernel): to the event arriving from kernel.Watcher.Read
#     in Go (a negative p50 means the reader had the event before the opener was back from the
#     system call), and the same from the kernel's own timestamp;
#  2. serve's monitor (internal/monitor BenchmarkServeLatency), in kernel mode and, in the same
#     run, in poll mode at --interval 1s: to the drift event's judged_at, its stored_at, and its
#     delivery to a sink (sinks read only what the store has made durable). Listeners 1 ms apart.
#
#   sudo bench/live-latency.sh [N] [ROUNDS]          (defaults: 1000 5)
#
# Needs root (BPF, netns, cgroup).
set -euo pipefail
N=${1:-1000} ROUNDS=${2:-5}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it loads BPF programs and creates a network namespace" >&2; exit 2; }
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $N listeners per round, $ROUNDS rounds"
go test ./internal/kernel -run '^$' -bench '^BenchmarkListenLatency$' -benchtime "${N}x" -count "$ROUNDS" |
  awk '/^BenchmarkListenLatency/ {
    for (i = 1; i <= NF; i++) m[$(i+1)] = $i
    printf "listen->Go p50 %8.1f us  p99 %8.1f us   kernel->Go p50 %8.1f us  p99 %8.1f us\n",
      m["p50-ns"]/1000, m["p99-ns"]/1000, m["kernel-p50-ns"]/1000, m["kernel-p99-ns"]/1000
  }
  /^(FAIL|ok|PASS)/ {print}'
go test ./internal/monitor -run '^$' -bench '^BenchmarkServeLatency$' -benchtime "${N}x" -count "$ROUNDS" |
  awk '/^BenchmarkServeLatency/ {
    for (i = 1; i <= NF; i++) m[$(i+1)] = $i
    split($1, name, "/"); sub(/-[0-9]+$/, "", name[2])
    printf "serve %-6s judged p50 %9.2f ms p99 %9.2f ms   stored p50 %9.2f ms p99 %9.2f ms   exported p50 %9.2f ms p99 %9.2f ms\n",
      name[2], m["judged-p50-ns"]/1e6, m["judged-p99-ns"]/1e6, m["stored-p50-ns"]/1e6, m["stored-p99-ns"]/1e6, m["exported-p50-ns"]/1e6, m["exported-p99-ns"]/1e6
  }
  /^(FAIL|ok|PASS)/ {print}'
