#!/usr/bin/env bash
# bindguard run --guard's cost: requests/s of a small Flask handler under gunicorn served
# directly (bindguard run, exec in place: gunicorn owns the socket) and through --guard
# (bindguard's access check and reverse proxy in front of gunicorn on a Unix socket), side by
# side under the same load generator (wrk, on loopback inside a network namespace of its own),
# in rounds of rotating order; medians at the end. The peer: nginx (one worker, as the guard
# runs on one P on two CPUs) as the reverse proxy in front of the same app, with the access
# check nginx does on the peer address (allow 127.0.0.1) and X-Forwarded-For/X-Real-IP set
# to the client, in the same rounds. Every proxy column gives its CPU per request; the last
# lines give each against direct and the guard's req/s as a ratio to nginx's.
#
#   sudo bench/run-guard.sh [ROUNDS] [SECONDS] [CONNECTIONS] [WORKERS]   (defaults: 5 10 16 2)
#
# BASELINE=/path/to/bindguard adds a third column: --guard through that (older) binary, in the
# same rounds, so a change to the proxy is measured against its predecessor paired;
# BASELINE_ENV="GOMAXPROCS=1 ..." is that process's extra environment.
#
# Needs root (namespace); installs gunicorn, python3-flask, wrk and nginx (nginx-light) when missing.
# NGINX_WORKERS (default 1) sets nginx's worker_processes.
set -euo pipefail
ROUNDS=${1:-5} SECS=${2:-10} CONNS=${3:-16} WORKERS=${4:-2} WORKER_CLASS=${WORKER_CLASS:-sync}
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "needs root: it creates a network namespace" >&2; exit 2; }
need=()
for p in gunicorn python3-flask wrk iproute2; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
[[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
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
  - name: nginx
    port: 8104
    address: 127.0.0.1
    access: localhost_only
YAML
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGX
user root;
worker_processes ${NGINX_WORKERS:-1};
pid $work/nginx/nginx.pid;
error_log $work/nginx.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:8104;
    location / {
      allow 127.0.0.1;
      deny all;
      proxy_pass http://unix:$work/nginx-app.sock;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Real-IP \$remote_addr;
    }
  }
}
NGX
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
# The peer: gunicorn on a Unix socket behind nginx.
"${in_ns[@]}" /usr/bin/gunicorn -w "$WORKERS" -k "$WORKER_CLASS" --log-level warning --bind "unix:$work/nginx-app.sock" app:app 2>"$work/nginx-app.log" &
pids+=($!)
"${in_ns[@]}" /usr/sbin/nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>>"$work/nginx.log" &
pids+=($!) nginxpid=$!
ports=(8101 8102 8104)
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

# A proxy's CPU per request (user+system of its processes: bindguard, which nsenter execs in
# place; nginx's workers): less noisy than req/s on a shared machine.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
nginxworkers=$(cat "/proc/$nginxpid/task/$nginxpid/children")
[[ -n $nginxworkers ]] || { echo "nginx has no workers" >&2; exit 1; }
legs=(direct guard nginx)
declare -A port=([direct]=8101 [guard]=8102 [nginx]=8104 [baseline]=8103)
declare -A cpupids=([direct]="" [guard]=$guardpid [nginx]=$nginxworkers [baseline]=$basepid)
[[ -z $BASELINE ]] || legs+=(baseline)
run() { # leg: prints "req/s µs-per-request" (µs "-" without processes to count)
  local t0 t1 out pp=${cpupids[$1]}
  [[ -z $pp ]] || t0=$(ticks $pp)
  out=$("${in_ns[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:${port[$1]}/")
  [[ -z $pp ]] || t1=$(ticks $pp)
  awk -v t0="${t0:-0}" -v t1="${t1:-0}" -v hz="$hz" -v cpu="${pp:+1}" '/requests in/{n=$1} /^Requests\/sec/{r=$2} END{if (cpu) printf "%s %.0f\n", r, (t1-t0)*1e6/hz/n; else printf "%s -\n", r}' <<<"$out"
}
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); gunicorn $WORKERS $WORKER_CLASS workers; nginx ${NGINX_WORKERS:-1} worker(s); wrk -t1 -c$CONNS -d${SECS}s; $ROUNDS rounds, order rotating"
declare -A res=() cpu=()
n=${#legs[@]}
for r in $(seq 1 "$ROUNDS"); do
  line="round $r:"
  for k in $(seq 0 $((n - 1))); do
    leg=${legs[$(((k + r - 1) % n))]}
    read -r a c < <(run "$leg")
    res[$leg]+="$a " cpu[$leg]+="$c "
  done
  for leg in "${legs[@]}"; do
    a=${res[$leg]% } a=${a##* } c=${cpu[$leg]% } c=${c##* }
    line+=$(printf '   %s %8.1f req/s' "$leg" "$a")
    [[ $c == - ]] || line+=" ($c µs CPU/req)"
  done
  echo "$line"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
# shellcheck disable=SC2086
md=$(median ${res[direct]})
for leg in "${legs[@]}"; do
  # shellcheck disable=SC2086
  m=$(median ${res[$leg]})
  declare "med_$leg=$m"
  if [[ $leg == direct ]]; then printf 'median: direct %.1f req/s\n' "$m"; continue; fi
  # shellcheck disable=SC2086
  printf 'median: %-8s %.1f req/s: %+.1f %% against direct (CPU %s µs/req)\n' "$leg" "$m" "$(awk -v a="$md" -v b="$m" 'BEGIN{print 100*(b-a)/a}')" "$(median ${cpu[$leg]})"
done
printf 'guard against nginx (peer): %.2fx the req/s\n' "$(awk -v a="$med_nginx" -v b="$med_guard" 'BEGIN{print b/a}')"
[[ -z $BASELINE ]] || printf 'guard against baseline: %+.1f %%\n' "$(awk -v a="$med_baseline" -v b="$med_guard" 'BEGIN{print 100*(b-a)/a}')"
