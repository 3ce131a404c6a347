# Shared by the bench scripts (source it): a network namespace of its own holding N listening
# sockets over P processes plus I idle processes with F files each (bench/listeners.c), and
# bindguard built, in $work. bench_start N P I F sets $work, $ns and starts the generator;
# extra cleanup goes in bench_extra_cleanup.

gen_pid=""
bench_extra_cleanup() { :; }
bench_cleanup() {
  bench_extra_cleanup
  # End of input makes the generator kill its children by pid and exit; they also die with it
  # (PR_SET_PDEATHSIG), so the fallback kill of its own pid leaks nothing.
  exec 3>&- 2>/dev/null || true
  if [[ -n $gen_pid ]]; then
    for _ in $(seq 1 50); do kill -0 "$gen_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$gen_pid" 2>/dev/null || true
  fi
  [[ -n ${ns:-} ]] && ip netns del "$ns" 2>/dev/null || true
  [[ -n ${work:-} ]] && rm -rf "$work"
}

bench_start() { # N P I F
  local n=$1 p=$2 i=$3 f=$4
  work=$(mktemp -d)
  ns="bgbench-$$"
  trap bench_cleanup EXIT
  gcc -O2 -o "$work/listeners" bench/listeners.c
  go build -o "$work/bindguard" ./cmd/bindguard
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  for a in $(seq 2 $(( (n + 39999) / 40000 ))); do ip -n "$ns" addr add "127.0.0.$a/8" dev lo 2>/dev/null || true; done
  # The generator reads its stdin from fd 3's pipe; closing fd 3 ends it.
  mkfifo "$work/ctl"
  nsenter --net="/run/netns/$ns" "$work/listeners" "$n" "$p" "$i" "$f" <"$work/ctl" >"$work/ready" &
  gen_pid=$!
  exec 3>"$work/ctl"
  for _ in $(seq 1 600); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$work/ready" || { echo "generator did not start" >&2; exit 1; }
}
