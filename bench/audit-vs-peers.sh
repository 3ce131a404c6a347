#!/usr/bin/env bash
# Compare `bindguard audit --format json` (sockets, owners and policy) with `ss -tulnp`,
# `netstat -tulnp` and `lsof -nP -i` on the same host state: a network namespace of its own
# holding N listening TCP sockets and U bound UDP sockets over P processes, plus I idle
# processes with F open files each.
#
#   sudo bench/audit-vs-peers.sh [N] [P] [I] [F] [RUNS] [U] [PIDNS]
#                                   (defaults: 10000 500 1500 50 7 0 host)
#
# PIDNS=child runs the processes and every tool inside a pid namespace of their own with its own
# /proc (unshare --pid --fork --mount-proc), as in a container; PIDNS=both runs host, then child.
#
# Prints the median wall time and peak RSS of each tool and the ratio to ss -tulnp; the tools take
# turns, one run each per round, RUNS rounds. bindguard runs
# twice: as shipped (owner scan auto: the BPF iterator at this many processes) and with the
# /proc scan forced. Needs root (network namespace, BPF), gcc, iproute2, net-tools, lsof and
# GNU time (installed when missing).
set -euo pipefail
N=${1:-10000} P=${2:-500} I=${3:-1500} F=${4:-50} RUNS=${5:-7} U=${6:-0} PIDNS=${7:-host}
cd "$(dirname "$0")/.."
if [[ $PIDNS == both ]]; then
  "$0" "$N" "$P" "$I" "$F" "$RUNS" "$U" host
  echo
  exec "$0" "$N" "$P" "$I" "$F" "$RUNS" "$U" child
fi
[[ $(id -u) -eq 0 ]] || { echo "needs root: it creates a network namespace" >&2; exit 2; }
need=()
for p in gcc iproute2 net-tools lsof time; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
if ((${#need[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_start "$N" "$P" "$I" "$F" "$U" "$PIDNS"
procs=$("${in_ns[@]}" sh -c 'ls -d /proc/[0-9]* | wc -l')
echo "state ($PIDNS pid namespace): $N TCP listeners and $U UDP sockets over $P processes, $I idle processes with $F files each; $procs processes in the tools' /proc; $(nproc) CPUs"

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# The tools run in rounds, each once per round in turn, so that a change in the machine's load
# during the run (other jobs on a shared VM) falls on every tool alike.
names=("bindguard audit --format json" "  ... --owner-scan procfs" "  ... --owner-scan bpf" "ss -tulnp" "netstat -tulnp" "lsof -nP -i")
tool() { # index, prefix...: runs the tool with the prefix (time, nsenter) before it
  local i=$1; shift
  case $i in
    0) "$@" "$work/bindguard" audit --format json ;;
    1) "$@" "$work/bindguard" audit --format json --owner-scan procfs ;;
    2) "$@" "$work/bindguard" audit --format json --owner-scan bpf ;;
    3) "$@" ss -tulnp ;;
    4) "$@" netstat -tulnp ;;
    5) "$@" lsof -nP -i ;;
  esac
}

cd "$work" # no ./bindguard.yaml here: the audit uses the built-in catalogue
# every socket's owner must be found, in either pid namespace (the iterator's pids are the tools')
for scan in auto procfs bpf; do
  owned=$("${in_ns[@]}" "$work/bindguard" audit --format json --owner-scan "$scan" 2>/dev/null | grep -c '"pid":' || true)
  echo "owners found with --owner-scan $scan: $owned of $((N + U)) sockets"
done
lines=()
for t in "${!names[@]}"; do lines[t]=$(tool "$t" "${in_ns[@]}" 2>/dev/null | wc -l); done
for _ in $(seq 1 "$RUNS"); do
  for t in "${!names[@]}"; do
    tool "$t" /usr/bin/time -f "%e %M" -o "$work/t" "${in_ns[@]}" >/dev/null 2>&1 || true
    tail -n 1 "$work/t" >>"$work/times.$t" # GNU time puts "Command exited with non-zero status" first
  done
done
for t in "${!names[@]}"; do
  printf '%s\t%s\t%s\t%s\n' "${names[t]}" "$(awk '{print $1}' "$work/times.$t" | median)" \
    "$(awk '{print $2}' "$work/times.$t" | median)" "${lines[t]}" >>"$work/results"
done
base=$(awk -F'\t' '$1=="ss -tulnp"{print $2}' "$work/results")
echo
printf '%-32s %10s %8s %12s %10s\n' tool "median s" "x ss" "peak RSS MiB" "out lines"
while IFS=$'\t' read -r name t kb lines; do
  ratio=$(awk -v a="$t" -v b="$base" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }')
  printf '%-32s %10s %8s %12.1f %10s\n' "$name" "$t" "$ratio" "$(awk -v k="$kb" 'BEGIN{print k/1024}')" "$lines"
done <"$work/results"
