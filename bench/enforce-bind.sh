#!/usr/bin/env bash
# What enforcement adds to bind(), decided in one process (internal/kernel
# TestEnforcePairedBind): ROUNDS rounds on one CPU; a round runs, for each case (allowed
# 127.0.0.1:6379, undeclared 127.0.0.1:7000, port 0 off loopback, denied 0.0.0.0:6379), one
# block of BLOCK binds per arm in a random order: none, trivial ("return 1" bind4 and
# post_bind4 programs: the kernel's fixed cost of the hooks), ours (the enforcement programs
# on the four hooks, as `enforce apply` attaches them) and sibling (ours on an empty sibling
# cgroup only). Programs are attached before an arm's block and detached after it. It prints
# the median of the per-round differences in ns per bind with 95 % confidence intervals
# (order statistics and bootstrap), and whether the 150 ns target of issue 15 is met. The
# report says whether any other cgroup/bind4 program was attached on the machine (the kernel's
# static key is then on in "none" too).
#
#   sudo bench/enforce-bind.sh [ROUNDS] [BLOCK]     (defaults: 200 20000; ~5 min at 200 x 20000)
#
# Env: CPU (the CPU to pin to, default the last), CASES, ARMS (comma lists), CSV (a file for
# every block's figure), SEED. Needs root (BPF, netns, cgroup). The run holds
# /tmp/bindguard-bench.lock (other benchmarks wait for it, and it for them).
set -euo pipefail
ROUNDS=${1:-200} BLOCK=${2:-20000}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it loads BPF programs and creates a cgroup and a network namespace" >&2; exit 2; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/kernel.test" ./internal/kernel
cd internal/kernel
BINDGUARD_PAIRED=1 BINDGUARD_PAIRED_ROUNDS=$ROUNDS BINDGUARD_PAIRED_BLOCK=$BLOCK \
  BINDGUARD_PAIRED_CPU=${CPU:-} BINDGUARD_PAIRED_CASES=${CASES:-} BINDGUARD_PAIRED_ARMS=${ARMS:-} \
  BINDGUARD_PAIRED_CSV=${CSV:-} BINDGUARD_PAIRED_SEED=${SEED:-} \
  flock /tmp/bindguard-bench.lock "$bin/kernel.test" -test.run '^TestEnforcePairedBind$' -test.v -test.timeout 30m |
  grep -v -e '^=== RUN' -e '^PASS$'
