#!/usr/bin/env bash
# bench/scan-realworld.sh: precision and recall of `bindguard scan` on real-world Python and
# JavaScript that is not in this repository (Debian's packages: the Python 3.11 standard library
# and the files under /usr/lib/python3/dist-packages of the Python packages named below and
# their dependencies, whatever else is installed; node-express, node-ws, node-sockjs, node-faye-websocket, node-http-proxy,
# node-http-server, node-connect with their examples), against the hand-labelled bind sites in
# internal/scan/testdata/realworld-labels.txt, and bandit B104 (Debian's bandit) on the same
# Python files in the same run. Scores are printed overall and per language.
#
# A labelled "wildcard" site binds every interface and should be reported; "loopback" sites are
# binds that should be allowed; "trap" lines are no bind of their own (comparisons, docstring
# examples, client addresses, library pass-through) and counted when reported. A reported
# finding (or a bandit B104 result) on a line that is not a wildcard site is a false positive; a
# wildcard site not reported is a miss.
#
# POLICY=FILE scans with --policy FILE. Under a policy a wildcard site the policy permits (a
# public service's port, a path its scan: section puts in a container) should be allowed, not
# reported: those sites are listed by hand in POLICY_LABELS (default: FILE with .yaml replaced by
# -labels.txt, e.g. internal/scan/testdata/realworld-policy-labels.txt for
# internal/scan/testdata/realworld-policy.yaml, the policy made for this sample); the scores then
# count the other wildcard sites as the exposures to report. Bandit has no policy: its line is
# always scored against every wildcard site. BANDIT=0 skips bandit.
#
# Twisted (listenTCP, endpoints and strports strings) is not modelled by the scan
# (docs/scan.md) and is left out of the sample, so the sample is the same where it is installed.
#
# Needs a cgo build, python3 and: apt-get install bandit python3-pip gunicorn python3-flask python3-uvicorn
#   python3-fastapi python3-aiohttp python3-tornado python3-waitress python3-bottle
#   python3-cherrypy3 python3-cheroot python3-pyftpdlib python3-aiosmtpd python3-hypercorn
#   python3-websockets python3-paste python3-dnslib python3-rpyc python3-livereload python3-pyro4
#   python3-aioftp node-express node-ws node-sockjs node-faye-websocket node-http-proxy
#   node-http-server node-connect
set -euo pipefail
cd "$(dirname "$0")/.."
labels=internal/scan/testdata/realworld-labels.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The sample: the Python standard library, and every .py file the Debian packages below and
# their dependencies (Depends and Pre-Depends, recursively) install under dist-packages, so
# that other packages installed on the machine do not change it; every .js / .mjs / .ts file
# of the node packages' directories. Tests, vendored trees and Python 2 tooling are left out
# by the same filters every time.
py_pkgs=(bandit gunicorn python3-flask python3-uvicorn python3-fastapi python3-aiohttp python3-tornado
	python3-waitress python3-bottle python3-cherrypy3 python3-cheroot python3-pyftpdlib python3-aiosmtpd
	python3-hypercorn python3-websockets python3-paste python3-dnslib python3-rpyc python3-livereload
	python3-pyro4 python3-aioftp python3-pip)
js_roots=(/usr/share/doc/node-express/examples /usr/share/doc/node-ws/examples /usr/share/doc/node-sockjs/examples
	/usr/share/doc/node-faye-websocket/examples /usr/share/nodejs/express /usr/share/nodejs/ws /usr/share/nodejs/sockjs
	/usr/share/nodejs/faye-websocket /usr/share/nodejs/http-proxy /usr/share/nodejs/http-server /usr/share/nodejs/connect)
for pkg in "${py_pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
		echo "scan-realworld: Debian package $pkg is not installed (install the packages named at the top)" >&2
		exit 2
	fi
done
for r in /usr/lib/python3.11 "${js_roots[@]}"; do
	if [ ! -e "$r" ]; then
		echo "scan-realworld: $r is missing (install the Debian packages named at the top)" >&2
		exit 2
	fi
done
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
	--no-enhances "${py_pkgs[@]}" | grep -v '^ ' | sort -u)
mkdir -p "$tmp/tree"
{
	find /usr/lib/python3.11 -name '*.py' -not -path '*/__pycache__/*' -not -path '/usr/lib/python3.11/test/*' \
		-not -path '*/tests/*' -not -path '*/test/*' -not -path '*/testing/*' -not -path '/usr/lib/python3.11/lib2to3/*' \
		-not -path '/usr/lib/python3.11/idlelib/*' -not -path '/usr/lib/python3.11/tkinter/*' \
		-not -path '/usr/lib/python3.11/turtledemo/*' -not -path '/usr/lib/python3.11/site-packages/*' \
		-not -path '/usr/lib/python3.11/config-*'
	for pkg in $closure; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' && dpkg -L "$pkg"
	done | grep '^/usr/lib/python3/dist-packages/.*\.py$' | grep -v -e '/__pycache__/' -e '/tests/' -e '/test/' \
		-e '/testing/' -e '^/usr/lib/python3/dist-packages/twisted/' | sort -u
} >"$tmp/py.list"
find "${js_roots[@]}" \( -name '*.js' -o -name '*.mjs' -o -name '*.ts' \) -not -path '*/node_modules/*' -not -name '*.min.js' >"$tmp/js.list"
cat "$tmp/py.list" "$tmp/js.list" | rsync -a --files-from=- / "$tmp/tree/"
echo "sample: $(wc -l <"$tmp/py.list") Python files, $(wc -l <"$tmp/js.list") JavaScript/TypeScript files"

go build -o "$tmp/bindguard" ./cmd/bindguard
start=$(date +%s.%N)
policy_args=()
policy_labels=/dev/null
if [[ -n ${POLICY:-} ]]; then
	policy_args=(--policy "$(realpath "$POLICY")")
	policy_labels=${POLICY_LABELS:-${POLICY%.yaml}-labels.txt}
	if [[ ! -e $policy_labels ]]; then
		echo "scan-realworld: no $policy_labels: scored as if the policy permitted no wildcard site" >&2
		policy_labels=/dev/null
	fi
	echo "with policy: $POLICY (permitted sites: $policy_labels)"
fi
"$tmp/bindguard" scan --format json --all --fail-on never "${policy_args[@]}" "$tmp/tree" >"$tmp/bg.json"
bg_time=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
# bandit exits 1 when it reports something; any other failure is shown below, not taken for "found 0".
bandit_rc=0
if [[ ${BANDIT:-1} == 0 ]]; then # BANDIT=0: bindguard only
  echo '{"results": [], "errors": []}' >"$tmp/bandit.json"
  : >"$tmp/bandit.err"
else
  (cd "$tmp/tree" && bandit -q -r -t B104 -f json $(sed 's|^/||' "$tmp/py.list") >"$tmp/bandit.json" 2>"$tmp/bandit.err") || bandit_rc=$?
fi
bandit_time=$(echo "$(date +%s.%N) - $start" | bc)

python3 - "$labels" "$tmp/bg.json" "$tmp/bandit.json" "$tmp/tree" "$bg_time" "$bandit_time" "$bandit_rc" "$tmp/bandit.err" "$policy_labels" <<'PY'
import json, sys
labels, bgf, bdf, tree, bgt, bdt, bdrc, bderr, plabels = sys.argv[1:]
want = {}  # "path:line" -> verdict
for l in open(labels):
    l = l.split("#", 1)[0].split()
    if len(l) >= 2:
        if l[1] not in ("wildcard", "loopback", "trap"):
            sys.exit(f"{labels}: {l[0]}: unknown verdict {l[1]!r}")
        want[l[0]] = l[1]
permitted = set()
for l in open(plabels):
    l = l.split("#", 1)[0].split()
    if len(l) >= 2:
        if want.get(l[0]) != "wildcard" or l[1] != "permitted":
            sys.exit(f"{plabels}: {l[0]}: not a wildcard site of {labels}, or not 'permitted'")
        permitted.add(l[0])
allwild = {k for k, v in want.items() if v == "wildcard"}
wild = allwild - permitted  # the exposures to report
loop = {k for k, v in want.items() if v == "loopback"}
trap = {k for k, v in want.items() if v == "trap"}
bg = json.load(open(bgf))
rep = {f"{f['file']}:{f['line']}" for f in bg["findings"] if f["status"] != "allowed"}
allowed_loop = {f"{f['file']}:{f['line']}" for f in bg["findings"] if f["status"] == "allowed" and f["reach"] == "loopback"}
bd = {"results": [], "errors": []}
try:
    if open(bdf).read().strip():
        bd = json.load(open(bdf))
except ValueError as e:
    print(f"bandit: its JSON output does not parse: {e}")
if bdrc not in ("0", "1") or not open(bdf).read().strip():
    err = open(bderr).read().strip().splitlines()
    print(f"bandit: exit status {bdrc}, no results to score; its stderr ({len(err)} lines) ends:")
    for l in err[-10:]:
        print(f"    {l}")
if bd.get("errors"):
    print(f"bandit: {len(bd['errors'])} files it could not read, first: {bd['errors'][0]}")
bdl = {f"{r['filename'].lstrip('./')}:{r['line_number']}" for r in bd["results"] if r["test_id"] == "B104"}
ispy = lambda k: k.split(":")[0].endswith(".py")
pywild = {k for k in wild if ispy(k)}
pyallwild = {k for k in allwild if ispy(k)}

def score(name, found, universe, t):
    tp, fp, fn = found & universe, found - universe, universe - found
    p = len(tp) / len(found) if found else 1.0
    r = len(tp) / len(universe) if universe else 1.0
    print(f"{name:34s} found {len(found):3d}  TP {len(tp):3d}  FP {len(fp):3d}  missed {len(fn):3d}  precision {p:.3f}  recall {r:.3f}  {float(t):.2f} s")
    for k in sorted(fp):
        print(f"    false positive {k}")
    for k in sorted(fn):
        print(f"    missed         {k}")

nlang = lambda ks: f"{len({k for k in ks if ispy(k)})} Python, {len({k for k in ks if not ispy(k)})} JavaScript"
print(f"labels: {len(allwild)} wildcard sites ({nlang(allwild)}), {len(loop)} loopback sites ({nlang(loop)}), {len(trap)} traps ({nlang(trap)})")
if permitted:
    print(f"the policy permits {len(permitted)} wildcard sites ({nlang(permitted)}): {len(wild)} exposures to report")
score("bindguard (all files)", rep, wild, bgt)
score("bindguard (Python files)", {k for k in rep if ispy(k)}, pywild, bgt)
score("bindguard (JavaScript files)", {k for k in rep if not ispy(k)}, wild - pywild, bgt)
score("bandit B104 (Python files)", bdl, pyallwild, bdt)
allowed = {f"{f['file']}:{f['line']}" for f in bg["findings"] if f["status"] == "allowed"}
if permitted:
    print(f"policy-permitted sites bindguard allows: {len(permitted & allowed)} of {len(permitted)}")
    for k in sorted(permitted - allowed):
        print(f"    permitted site not allowed {k}")
print(f"traps reported: bindguard {len(trap & rep)} of {len(trap)}, bandit {len(trap & bdl)} of {len({k for k in trap if ispy(k)})}")
for k in sorted(trap & rep):
    print(f"    bindguard reports trap {k}")
print(f"loopback sites bindguard allows: {len(loop & allowed_loop)} of {len(loop)} ({len({k for k in loop & allowed_loop if ispy(k)})} of {len({k for k in loop if ispy(k)})} Python)")
for k in sorted(loop - allowed_loop):
    print(f"    loopback site not seen {k}")
print(f"bindguard problems: {len(bg['problems'])}; unscanned: {bg['unscanned']}")
PY
