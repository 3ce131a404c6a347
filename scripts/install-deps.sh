#!/usr/bin/env bash
# Install the named Debian packages that are not installed yet. Needs root for apt-get; without
# it, says what is missing and carries on (the tests that need a package skip, naming it).
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "install-deps: not root (or no apt-get); missing Debian packages: ${missing[*]}" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages such as nginx and redis-server start their daemon on install; the tests start their
# own, in namespaces of their own. policy-rc.d exiting 101 tells Debian's maintainer scripts not
# to start anything (removed again afterwards unless it was there before).
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
