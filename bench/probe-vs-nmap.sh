#!/usr/bin/env bash
# Time `bindguard probe` against `nmap -sT` on the same target in the same run: a network
# namespace of its own whose loopback holds L listening TCP sockets that accept
# (bench/probetarget, ports 20000-...), both tools probing PORTS ports from 20000 on 127.0.0.1 inside it, first with the
# closed ports answering RST, then with F of them dropped by an nftables rule (filtered).
#
#   sudo bench/probe-vs-nmap.sh [PORTS] [L] [F] [RUNS]     (defaults: 1000 100 100 5)
#
# bindguard runs at its polite defaults (--rate 200 --concurrency 64 --timeout 1s) and
# unthrottled (--rate 10000 --concurrency 256); nmap at its defaults (-T3) and -T4, -Pn -n. Prints
# the median wall time of each and the open/closed/filtered counts each tool saw, which must
# agree. Needs root (a network namespace), iproute2, nftables, nmap and bc (installed when
# missing). Probes go only to 127.0.0.1 inside the bench's own namespace.
set -euo pipefail
PORTS=${1:-1000} L=${2:-100} F=${3:-100} RUNS=${4:-5}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it creates a network namespace" >&2; exit 2; }
((L <= PORTS && F <= PORTS - L)) || { echo "need L <= PORTS and F <= PORTS - L" >&2; exit 2; }
need=()
for p in iproute2 nftables nmap bc; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
if ((${#need[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi

work=$(mktemp -d)
ns="bgprobe-$$"
target_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true # end of input: the target exits
  if [[ -n $target_pid ]]; then
    for _ in $(seq 1 50); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$target_pid" 2>/dev/null || true
  fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bindguard" ./cmd/bindguard
go build -o "$work/probetarget" ./bench/probetarget
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns=(nsenter --net="/run/netns/$ns")
mkfifo "$work/ctl"
"${in_ns[@]}" "$work/probetarget" 20000 "$L" <"$work/ctl" >"$work/ready" &
target_pid=$!
exec 3>"$work/ctl"
for _ in $(seq 1 100); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/ready" || { echo "the target did not start" >&2; exit 1; }
last=$((20000 + PORTS - 1))
{
  echo "version: 1"
  echo "services:"
  for i in $(seq 0 $((L - 1))); do echo "  - {name: s$((20000 + i)), port: $((20000 + i)), address: 127.0.0.1, access: localhost_only}"; done
} >"$work/policy.yaml"
echo "target: 127.0.0.1 in its own network namespace, ports 20000-$last: $L open; $(nproc) CPUs; nmap $(nmap --version | awk 'NR==1{print $3}')"

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
secs() { local s e; s=$(date +%s.%N); "$@" >"$work/out" 2>/dev/null || true; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

bg_counts() { # open closed filtered of a bindguard.probe.v1 document (listed) + undeclared counts
  local doc=$1
  local o c f
  o=$(grep -c '"state": "open"' "$doc" || true)
  c=$(( $(grep -c '"state": "closed"' "$doc" || true) + $(sed -n 's/.*"closed": \([0-9]*\).*/\1/p' "$doc" | head -1 | grep . || echo 0) ))
  f=$(( $(grep -c '"state": "filtered"' "$doc" || true) + $(sed -n 's/.*"filtered": \([0-9]*\).*/\1/p' "$doc" | head -1 | grep . || echo 0) ))
  echo "open $o closed $c filtered $f"
}
nmap_counts() { # from nmap's normal output: the listed ports and the "Not shown: N STATE" counts
  local o c f
  o=$(grep -cE '^[0-9]+/tcp +open ' "$1" || true)
  c=$(( $(grep -cE '^[0-9]+/tcp +closed ' "$1" || true) + $(grep -oE '[0-9]+ closed tcp ports' "$1" | grep -oE '^[0-9]+' || echo 0) ))
  f=$(( $(grep -cE '^[0-9]+/tcp +filtered ' "$1" || true) + $(grep -oE '[0-9]+ filtered tcp ports' "$1" | grep -oE '^[0-9]+' || echo 0) ))
  echo "open $o closed $c filtered $f"
}

scenario() {
  local label=$1
  echo
  echo "$label"
  printf '  %-46s %10s   %s\n' tool "median s" "states seen"
  local -a names=("bindguard probe (defaults: rate 200/s)" "bindguard probe --rate 10000 --concurrency 256" "nmap -sT -Pn -n (T3)" "nmap -sT -Pn -n -T4")
  local -a cmds=(
    "$work/bindguard probe -p $work/policy.yaml --target 127.0.0.1 --from /run/netns/$ns --ports 20000-$last --format json"
    "$work/bindguard probe -p $work/policy.yaml --target 127.0.0.1 --from /run/netns/$ns --ports 20000-$last --format json --rate 10000 --concurrency 256"
    "${in_ns[*]} nmap -sT -Pn -n -p 20000-$last -oN - 127.0.0.1"
    "${in_ns[*]} nmap -sT -Pn -n -T4 -p 20000-$last -oN - 127.0.0.1"
  )
  for k in "${!cmds[@]}"; do
    local times=() counts
    for _ in $(seq 1 "$RUNS"); do
      # shellcheck disable=SC2086
      times+=("$(secs ${cmds[$k]})")
    done
    if ((k < 2)); then counts=$(bg_counts "$work/out"); else counts=$(nmap_counts "$work/out"); fi
    printf '  %-46s %10.3f   %s\n' "${names[$k]}" "$(printf '%s\n' "${times[@]}" | median)" "$counts"
  done
}

scenario "closed ports answer RST ($((PORTS - L)) closed)"
if ((F > 0)); then
  lo=$((20000 + L)) hi=$((20000 + L + F - 1))
  "${in_ns[@]}" nft -f - <<NFT
table inet bgbench {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport $lo-$hi drop
  }
}
NFT
  scenario "ports $lo-$hi dropped by nftables ($F filtered, $((PORTS - L - F)) closed)"
fi
