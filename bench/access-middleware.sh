#!/usr/bin/env bash
# Throughput cost of access.Middleware: wrk against the same handler served bare and behind the
# middleware (a localhost_only service: X-Forwarded-For walk, Host check), both on loopback in
# one process, alternating ROUNDS times, DURATION each, CONNS connections.
#
#   bench/access-middleware.sh [ROUNDS] [DURATION] [CONNS]     (defaults: 5 10s 32)
#
# Prints the median requests/s of each and the ratio. Needs wrk (installed when missing, as root).
set -euo pipefail
ROUNDS=${1:-5} DURATION=${2:-10s} CONNS=${3:-32}
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  [[ $(id -u) -eq 0 ]] || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
work=$(mktemp -d)
srv_pid=""
cleanup() { [[ -n $srv_pid ]] && kill "$srv_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/accessbench" ./bench/accessbench
"$work/accessbench" >"$work/addrs" &
srv_pid=$!
for _ in $(seq 1 50); do [[ $(wc -l <"$work/addrs") -ge 2 ]] && break; sleep 0.1; done
bare=$(awk '$1=="bare"{print $2}' "$work/addrs")
guarded=$(awk '$1=="guarded"{print $2}' "$work/addrs")
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
rps() { # addr; every answer must be 200, or the comparison would measure refusals
  local out
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H 'Host: localhost' -H 'X-Forwarded-For: 127.0.0.1, ::1' "http://$1/api/x")
  if grep -q 'Non-2xx' <<<"$out"; then echo "$1 answered non-2xx:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/{print $2}' <<<"$out"
}
for i in $(seq 1 "$ROUNDS"); do
  rps "$bare" >>"$work/bare"
  rps "$guarded" >>"$work/guarded"
done
b=$(median <"$work/bare") g=$(median <"$work/guarded")
echo "bare:    $(tr '\n' ' ' <"$work/bare")-> median $b req/s"
echo "guarded: $(tr '\n' ' ' <"$work/guarded")-> median $g req/s"
awk -v b="$b" -v g="$g" 'BEGIN { printf "guarded/bare throughput: %.3f (cost %.1f %%)\n", g/b, (1-g/b)*100 }'
