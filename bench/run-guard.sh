#!/usr/bin/env bash
# bindguard run --guard's cost: requests/s of a small Flask handler under gunicorn served
# directly (bindguard run, exec in place: gunicorn owns the socket) and through --guard
# (bindguard's access check and reverse proxy in front of gunicorn on a Unix socket), side by
# side under the same load generator (wrk, on loopback inside a network namespace of its own),
# in alternating rounds; medians at the end.
#
#   sudo bench/run-guard.sh [ROUNDS] [SECONDS] [CONNECTIONS] [WORKERS]   (defaults: 5 10 16 2)
#
# BASELINE=/path/to/bindguard adds a third column: --guard through that (older) binary, in the
# same rounds, so a change to the proxy is measured against its predecessor paired;
# BASELINE_ENV="GOMAXPROCS=1 ..." is that process's extra environment.
#
# Needs root (namespace); installs gunicorn, python3-flask and wrk when missing.
set -euo pipefail
ROUNDS=${1:-5} SECS=${2:-10} CONNS=${3:-16} WORKERS=${4:-2} WORKER_CLASS=${WORKER_CLASS:-sync}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it creates a network namespace" >&2; exit 2; }
need=()
for p in gunicorn python3-flask wrk iproute2; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
if ((${#need[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi

work=$(mktemp -d) ns="bgrunbench-$$" pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bindguard" ./cmd/bindguard
BASELINE=${BASELINE:-}
if [[ -n $BASELINE ]]; then cp "$BASELINE" "$work/baseline"; fi
cat >"$work/app.py" <<'PY'
from flask import Flask
app = Flask(__name__)
@app.route("/")
def ok():
    return "ok\n"
PY
cat >"$work/bindguard.yaml" <<'YAML'
version: 1
services:
  - name: direct
    port: 8101
    address: 127.0.0.1
    access: localhost_only
  - name: guarded
    port: 8102
    address: 127.0.0.1
    access: localhost_only
  - name: baseline
    port: 8103
    address: 127.0.0.1
    access: localhost_only
YAML
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns=(nsenter --net="/run/netns/$ns")
cd "$work"
"${in_ns[@]}" ./bindguard run -p bindguard.yaml --service direct -- \
  /usr/bin/gunicorn -w "$WORKERS" -k "$WORKER_CLASS" --log-level warning app:app 2>"$work/direct.log" &
pids+=($!)
"${in_ns[@]}" ./bindguard run -p bindguard.yaml --service guarded --guard --log-level warn -- \
  /bin/sh -c "exec /usr/bin/gunicorn -w $WORKERS -k $WORKER_CLASS --log-level warning --bind unix:\$BINDGUARD_UPSTREAM app:app" 2>"$work/guarded.log" &
pids+=($!) guardpid=$! basepid=
ports=(8101 8102)
if [[ -n $BASELINE ]]; then
  "${in_ns[@]}" env ${BASELINE_ENV:-} ./baseline run -p bindguard.yaml --service baseline --guard --log-level warn -- \
    /bin/sh -c "exec /usr/bin/gunicorn -w $WORKERS -k $WORKER_CLASS --log-level warning --bind unix:\$BINDGUARD_UPSTREAM app:app" 2>"$work/baseline.log" &
  pids+=($!) ports+=(8103) basepid=$!
fi
# Loopback clients must name themselves (the default trusted_proxies are loopback).
hdr=(-H "X-Forwarded-For: 127.0.0.1")
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    [[ $("${in_ns[@]}" curl -s "${hdr[@]}" "http://127.0.0.1:$port/" || true) == ok ]] && break; sleep 0.1
  done
  [[ $("${in_ns[@]}" curl -s "${hdr[@]}" "http://127.0.0.1:$port/") == ok ]] || { echo "port $port not serving" >&2; cat "$work"/*.log >&2; exit 1; }
done
[[ $("${in_ns[@]}" curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-For: 127.0.0.1, 10.1.1.50' http://127.0.0.1:8102/) == 403 ]] || { echo "guard did not refuse a remote client" >&2; exit 1; }

rps() { "${in_ns[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:$1/" | awk '/^Requests\/sec/{print $2}'; }
# The guard's CPU per request (user+system of the bindguard process, which nsenter execs in
# place): less noisy than req/s on a shared machine. Sets $cpu (µs per request).
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
rpscpu() { # port pid
  local t0 t1 out; t0=$(ticks "$2")
  out=$("${in_ns[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:$1/")
  t1=$(ticks "$2")
  awk -v t0="$t0" -v t1="$t1" -v hz="$hz" '/requests in/{n=$1} /^Requests\/sec/{r=$2} END{printf "%s %.0f\n", r, (t1-t0)*1e6/hz/n}' <<<"$out"
}
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); gunicorn $WORKERS $WORKER_CLASS workers; wrk -t1 -c$CONNS -d${SECS}s; $ROUNDS rounds, alternating"
d=() g=() o=() gc=() oc=()
for r in $(seq 1 "$ROUNDS"); do
  if [[ -n $BASELINE ]]; then
    if ((r % 2)); then a=$(rps 8101); read -r b bc < <(rpscpu 8102 "$guardpid"); read -r c cc < <(rpscpu 8103 "$basepid")
    else read -r c cc < <(rpscpu 8103 "$basepid"); read -r b bc < <(rpscpu 8102 "$guardpid"); a=$(rps 8101); fi
    o+=("$c") oc+=("$cc")
    printf 'round %d: direct %8.1f req/s   --guard %8.1f req/s (%s µs CPU/req)   baseline --guard %8.1f req/s (%s µs CPU/req)\n' "$r" "$a" "$b" "$bc" "$c" "$cc"
  else
    if ((r % 2)); then a=$(rps 8101); read -r b bc < <(rpscpu 8102 "$guardpid"); else read -r b bc < <(rpscpu 8102 "$guardpid"); a=$(rps 8101); fi
    printf 'round %d: direct %10.1f req/s   --guard %10.1f req/s (%s µs CPU/req)\n' "$r" "$a" "$b" "$bc"
  fi
  d+=("$a") g+=("$b") gc+=("$bc")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
md=$(median "${d[@]}") mg=$(median "${g[@]}")
printf 'median: direct %.1f req/s, --guard %.1f req/s: %+.1f %% (guard CPU %s µs/req)\n' "$md" "$mg" "$(awk -v a="$md" -v b="$mg" 'BEGIN{print 100*(b-a)/a}')" "$(median "${gc[@]}")"
if [[ -n $BASELINE ]]; then
  mo=$(median "${o[@]}")
  printf 'median: baseline --guard %.1f req/s: %+.1f %% against direct (CPU %s µs/req); --guard against baseline %+.1f %%\n' "$mo" "$(awk -v a="$md" -v b="$mo" 'BEGIN{print 100*(b-a)/a}')" "$(median "${oc[@]}")" "$(awk -v a="$mo" -v b="$mg" 'BEGIN{print 100*(b-a)/a}')"
fi
