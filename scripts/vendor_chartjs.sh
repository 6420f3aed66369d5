#!/usr/bin/env bash
# Re-vendors the dashboard's charting library (Chart.js, MIT) from the npm registry,
# pinned by version and checked against the registry's sha512 integrity. The file is
# committed and embedded in the binary, so building or running moodwire never needs
# npm or a CDN; run this only to change the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.6.1
INTEGRITY=sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==
OUT=crates/server/assets/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@$VERSION" >/dev/null)
tarball="$work/chart.js-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$actual" = "$INTEGRITY" ] || { echo "chart.js@$VERSION: integrity mismatch ($actual)" >&2; exit 1; }
tar -xzf "$tarball" -C "$work" package/dist/chart.umd.min.js package/LICENSE.md
mkdir -p "$OUT"
cp "$work/package/dist/chart.umd.min.js" "$OUT/chart.umd.min.js"
cp "$work/package/LICENSE.md" "$OUT/chart.js.LICENSE.md"
echo "vendored chart.js@$VERSION into $OUT"
