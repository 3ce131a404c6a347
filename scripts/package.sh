#!/usr/bin/env bash
# Build bindguard's Debian package: scripts/package.sh [OUTDIR] (default .bin). Stages the
# binary, man pages and completions (generated from the command tree: scripts/gendocs), the
# systemd unit from deploy/systemd (pointed at /usr/bin) under .bin/package/stage, then runs
# nfpm with packaging/nfpm.yaml. nfpm is installed into .bin at a pinned version if missing.
# Prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM_VER=${NFPM_VER:-v2.48.0}
out=${1:-.bin}
stage=.bin/package/stage
rm -rf "$stage"
mkdir -p "$stage/usr/bin" "$stage/usr/share/man/man1" "$out"

if [[ ! -x .bin/nfpm ]]; then
	GOBIN=$PWD/.bin "$GO" install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VER"
fi

# A reproducible date for the man pages: the commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
CGO_ENABLED=0 "$GO" build -trimpath -o "$stage/usr/bin/bindguard" ./cmd/bindguard
"$GO" run ./scripts/gendocs "$stage/docs"
for page in "$stage"/docs/man1/*.1; do
	gzip -9n <"$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"
done
mv "$stage/docs/completions" "$stage/completions"
sed 's|/usr/local/bin/bindguard|/usr/bin/bindguard|g' deploy/systemd/bindguard.service >"$stage/bindguard.service"
grep -q '^ExecStart=/usr/bin/bindguard ' "$stage/bindguard.service"

rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export VERSION=${VERSION:-0.0.0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S).$rev}
export ARCH=${ARCH:-$("$GO" env GOARCH)}
pkg="$out/bindguard_${VERSION}_${ARCH}.deb"
.bin/nfpm package --config packaging/nfpm.yaml --packager deb --target "$pkg" >&2
echo "$pkg"
