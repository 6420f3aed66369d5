#!/usr/bin/env bash
# Unpacks the pinned ONNX Runtime shared library into .ort/ (see crates/model/src/runtime.rs).
# The library ships inside the PyPI wheel onnxruntime==1.32.0; nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.32.0
LIB=".ort/libonnxruntime.so.${VERSION}"
[ -f "$LIB" ] && exit 0
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==${VERSION}" -d "$wheels"
mkdir -p .ort
python3 - "$wheels" "$LIB" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("onnxruntime-*.whl"))
target = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith("/capi/" + target.name))
    with z.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
print(f"unpacked {target} from {wheel.name}")
PY
