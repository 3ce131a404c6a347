# Shared by the bench scripts (source it): a network namespace of its own holding N listening
# sockets over P processes plus I idle processes with F files each (bench/listeners.c), and
# bindguard built, in $work. bench_start N P I F [U [PIDNS]] sets $work, $ns and starts the
# generator, with U bound UDP sockets too; with PIDNS=child the generator runs as pid 1 of a
# pid namespace of its own with its own /proc (unshare --pid --fork --mount-proc), as in a
# container, and $in_ns is the nsenter prefix that runs a command in there (else: the netns).
# Extra cleanup goes in bench_extra_cleanup.

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

bench_start() { # N P I F [U [PIDNS]]
  local n=$1 p=$2 i=$3 f=$4 u=${5:-0} pidns=${6:-host}
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
  local wrap=()
  [[ $pidns == child ]] && wrap=(unshare --pid --fork --mount-proc)
  nsenter --net="/run/netns/$ns" "${wrap[@]}" "$work/listeners" "$n" "$p" "$i" "$f" "$u" <"$work/ctl" >"$work/ready" &
  gen_pid=$!
  exec 3>"$work/ctl"
  for _ in $(seq 1 600); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$work/ready" || { echo "generator did not start" >&2; exit 1; }
  in_ns=(nsenter --net="/run/netns/$ns")
  if [[ $pidns == child ]]; then
    # the generator is pid 1 of the new namespace: unshare's child (nsenter exec'd unshare)
    local init
    init=$(cat /proc/"$gen_pid"/task/*/children 2>/dev/null | awk '{print $1; exit}')
    [[ -n $init ]] || { echo "no generator in the child pid namespace" >&2; exit 1; }
    in_ns=(nsenter --target "$init" --pid --mount --net --wd="$work")
  fi
}
