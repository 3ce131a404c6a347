#!/usr/bin/env bash
# Time `bindguard audit --netns all --format json` on a host running N real LXC containers against
# running `ss -tulnp` inside each of them in turn (lxc-attach, and nsenter), the target of issue 13:
# the audit at or below 0.25x the lxc-attach loop.
#
#   sudo bench/audit-containers.sh [N] [RUNS]     (defaults: 12 9)
#
# The containers come from internal/lxctest's cached base (built the first time, minutes), on its
# host-only bridge; they are destroyed when the bench ends, interrupted or not. Needs root, lxc,
# lxc-templates, debootstrap and rsync (installed when missing).
set -euo pipefail
N=${1:-12} RUNS=${2:-9}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it creates LXC containers" >&2; exit 2; }
scripts/install-deps.sh lxc lxc-templates debootstrap rsync
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bindguard" ./cmd/bindguard
go build -o "$work/lxcaudit" ./bench/lxcaudit
# lxcaudit destroys its containers itself on exit and on SIGINT/SIGTERM; a TERM sent to this
# script is passed on to it, by its pid.
"$work/lxcaudit" -bindguard "$work/bindguard" -n "$N" -runs "$RUNS" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
rc=0
wait "$pid" || rc=$?
# wait returns early when a trapped signal arrives: wait for the cleanup to finish.
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || rc=$?; done
exit "$rc"
