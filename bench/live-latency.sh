#!/usr/bin/env bash
# Latency of the kernel event source (internal/kernel): from listen() returning in a test
# process to the event arriving from kernel.Watcher.Read in Go, over N TCP listeners opened one
# by one in a network namespace of the benchmark's own (and a cgroup of its own), ROUNDS times.
#
#   sudo bench/live-latency.sh [N] [ROUNDS]          (defaults: 1000 5)
#
# Prints each round's p50 and p99 (ns; a negative p50 means the reader had the event before the
# opener was back from the system call) and the same measured from the kernel's own timestamp
# (bpf_ktime_get_ns, CLOCK_MONOTONIC, converted to wall time). Needs root (BPF, netns, cgroup).
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
