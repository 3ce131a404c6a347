#!/usr/bin/env bash
# The monitor's cost: `bindguard serve` on a network namespace of its own holding N listening
# sockets over P processes (plus IDLE processes with F files each), for DURATION seconds each,
# in poll mode (`--watch poll --interval I`) and in kernel mode (`--watch kernel`, its default
# reconciling interval of 60 s), against the seed's approach in the same run: `ss -tulnp` (the
# seed parsed netstat) every I seconds from a loop, as cron would. The host is otherwise idle
# (the daemon's idle cost): kernel mode should cost less than polling at the default 10 s.
#
#   sudo bench/serve-load.sh [N] [P] [IDLE] [F] [INTERVAL] [DURATION]   (defaults: 10000 500 1500 50 10 120)
#
# Prints CPU seconds used (and % of one core) and peak RSS of each. Needs root (namespace),
# gcc, iproute2, curl and GNU time (installed when missing).
set -euo pipefail
N=${1:-10000} P=${2:-500} IDLE=${3:-1500} F=${4:-50} INTERVAL=${5:-10} DURATION=${6:-120}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it creates a network namespace" >&2; exit 2; }
need=()
for p in gcc iproute2 curl time; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
if ((${#need[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi
serve_pid=""
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_extra_cleanup() { [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null || true; }
bench_start "$N" "$P" "$IDLE" "$F"
tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{print ($14+$15+$16+$17)/t}' "/proc/$1/stat"; }

echo "host state: $N listeners over $P processes, $IDLE idle processes with $F files each; $(nproc) CPUs; interval ${INTERVAL}s for ${DURATION}s"
cd "$work"
# run_serve NAME ARGS...: serve for DURATION seconds; sets cpu_NAME, rss_NAME, mode_NAME.
run_serve() {
  local name=$1; shift
  rm -rf "$work/data"
  nsenter --net="/run/netns/$ns" "$work/bindguard" serve --data "$work/data" "$@" >/dev/null 2>"$work/serve-$name.log" &
  serve_pid=$!
  sleep "$DURATION"
  printf -v "cpu_$name" '%s' "$(cpu_of "$serve_pid")"
  printf -v "rss_$name" '%s' "$(awk '/VmHWM/{print $2/1024}' "/proc/$serve_pid/status")"
  printf -v "mode_$name" '%s' "$(nsenter --net="/run/netns/$ns" curl -s http://127.0.0.1:9847/metrics | awk '/^bindguard_watch_mode\{mode="kernel"\} 1/{m="kernel"} /^bindguard_watch_mode\{mode="poll"\} 1/{m="poll"} END{print m}')"
  audit_s=$(nsenter --net="/run/netns/$ns" curl -s http://127.0.0.1:9847/metrics | awk '/^bindguard_audit_duration_seconds /{print $2}')
  printf -v "events_$name" '%s' "$(nsenter --net="/run/netns/$ns" curl -s http://127.0.0.1:9847/metrics | awk '/^bindguard_watch_events_total /{print $2}')"
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""
}
run_serve poll --watch poll --interval "${INTERVAL}s"
run_serve kernel --watch kernel
s_cpu=$cpu_poll s_rss=$rss_poll

# The seed's way: a fresh process every interval.
ss_cpu=0 ss_rss=0
end=$((SECONDS + DURATION))
while ((SECONDS < end)); do
  /usr/bin/time -f "%U %S %M" -o "$work/t" nsenter --net="/run/netns/$ns" ss -tulnp >/dev/null 2>&1 || true
  read -r u s kb <"$work/t"
  ss_cpu=$(awk -v a="$ss_cpu" -v u="$u" -v s="$s" 'BEGIN{print a+u+s}')
  ss_rss=$(awk -v a="$ss_rss" -v k="$kb" 'BEGIN{m=k/1024; print (m>a)?m:a}')
  sleep "$INTERVAL"
done
printf '\n%-40s %12s %12s %14s\n' "over ${DURATION}s" "CPU s" "% of a core" "peak RSS MiB"
printf '%-40s %12.2f %12.2f %14.1f\n' "serve --watch poll --interval ${INTERVAL}s" "$s_cpu" "$(awk -v c="$s_cpu" -v d="$DURATION" 'BEGIN{print 100*c/d}')" "$s_rss"
printf '%-40s %12.2f %12.2f %14.1f\n' "serve --watch kernel (ran: $mode_kernel)" "$cpu_kernel" "$(awk -v c="$cpu_kernel" -v d="$DURATION" 'BEGIN{print 100*c/d}')" "$rss_kernel"
printf '%-40s %12.2f %12.2f %14.1f\n' "ss -tulnp every ${INTERVAL}s" "$ss_cpu" "$(awk -v c="$ss_cpu" -v d="$DURATION" 'BEGIN{print 100*c/d}')" "$ss_rss"
echo "last audit took ${audit_s}s; CPU ratio poll serve/ss: $(awk -v a="$s_cpu" -v b="$ss_cpu" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }'); kernel/poll: $(awk -v a="$cpu_kernel" -v b="$s_cpu" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }')"
echo "(kernel mode read $events_kernel socket events of the whole host meanwhile: its tracepoint sees every namespace's TCP listeners)"
