#!/usr/bin/env bash
# Compare `bindguard scan` with gosec (G102 only) and bandit (B104 only) on the same trees:
# findings and median wall time of each, side by side.
#
#   bench/scan-vs-peers.sh [RUNS] [TREE...]     (defaults: 5, testdata/scan and this module)
#
# gosec is .bin/gosec of this checkout or of ../main (make deps installs the pinned version),
# else gosec on PATH; bandit is Debian's (apt-get install bandit), run when installed. A tool
# that is missing is reported as such, never faked. bindguard counts reported findings (what
# its SARIF and exit code carry); gosec and bandit count their issues. Counts on trees that
# contain no Python are 0 for bandit by construction, and gosec reads Go only.
set -euo pipefail
RUNS=${1:-5}
shift || true
cd "$(dirname "$0")/.."
trees=("$@")
((${#trees[@]})) || trees=(testdata/scan .)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/bindguard" ./cmd/bindguard

gosec=""
for g in .bin/gosec ../main/.bin/gosec; do [[ -x $g ]] && { gosec=$g; break; }; done
[[ -z $gosec ]] && gosec=$(command -v gosec || true)
bandit=$(command -v bandit || true)

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# time_runs CMD...: median wall seconds of RUNS runs (output discarded; exit status ignored).
time_runs() {
  local i s e
  for ((i = 0; i < RUNS; i++)); do
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
  done | median
}

count_bindguard() { "$work/bindguard" scan --format json --fail-on never "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["findings"]))'; }
# gosec_dirs TREE: the directories of Go files in TREE, as gosec arguments (gosec's ./... skips
# testdata, where the corpus lives).
gosec_dirs() { find "$1" -name '*.go' -not -path '*/vendor/*' -printf '%h\n' | sort -u | sed 's|^\([^/.]\)|./\1|'; }
count_gosec() { mapfile -t dirs < <(gosec_dirs "$2"); ("$1" -quiet -fmt json -include=G102 "${dirs[@]}" 2>/dev/null || true) | python3 -c 'import json,sys
try: print(len(json.load(sys.stdin).get("Issues") or []))
except Exception: print("error")'; }
count_bandit() { bandit -q -r -t B104 -f json "$1" 2>/dev/null | python3 -c 'import json,sys
try: print(len(json.load(sys.stdin)["results"]))
except Exception: print("error")' || true; }

printf '%-28s %-10s %10s %12s\n' TREE TOOL FINDINGS "WALL (s)"
for t in "${trees[@]}"; do
  printf '%-28s %-10s %10s %12.3f\n' "$t" bindguard "$(count_bindguard "$t")" "$(time_runs "$work/bindguard" scan --fail-on never "$t")"
  if [[ -n $gosec ]]; then
    g=$(realpath "$gosec")
    printf '%-28s %-10s %10s %12.3f\n' "$t" gosec-G102 "$(count_gosec "$g" "$t")" "$(mapfile -t dirs < <(gosec_dirs "$t"); time_runs "$g" -quiet -include=G102 "${dirs[@]}")"
  else
    printf '%-28s %-10s %10s %12s\n' "$t" gosec-G102 missing -
  fi
  if [[ -n $bandit ]]; then
    printf '%-28s %-10s %10s %12.3f\n' "$t" bandit-B104 "$(count_bandit "$t")" "$(time_runs bandit -q -r -t B104 "$t")"
  else
    printf '%-28s %-10s %10s %12s\n' "$t" bandit-B104 missing -
  fi
done
