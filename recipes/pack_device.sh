#!/usr/bin/env bash
# Pack what recipes/gpu_train.sh needs on a bare, offline GPU machine into .device/ (git-ignored):
# espeak-ng and flite with their shared libraries and English data, the training speakers of FSDD,
# the text pools of the recipe (seed 0) and wheels of soundfile/soxr for the machine's Python.
# Run it here, on a Debian machine where `python recipes/make_corpus.py` has installed its packages.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
D="$REPO/.device"
PY=${PY:-python3}
PYVER=${PYVER:-3.12}
rm -rf "$D" && mkdir -p "$D/stage/tts/bin" "$D/stage/tts/lib" "$D/stage/tts/espeak-ng-data" \
  "$D/stage/shared/data/fsdd/recordings" "$D/whl"
cp "$(command -v espeak-ng)" "$(command -v flite)" "$D/stage/tts/bin/"
for b in espeak-ng flite; do ldd "$(command -v $b)" | awk '/=>/{print $3}'; done | sort -u \
  | grep -v -E '/(libc|libm|libpthread|libdl)\.so|ld-linux' | xargs -I{} cp -L {} "$D/stage/tts/lib/"
E=$(dirname "$(find /usr/lib /usr/share -maxdepth 3 -type d -name espeak-ng-data | head -1)")/espeak-ng-data
cp -r "$E"/en_dict "$E"/phon* "$E"/intonations "$E"/voices "$E"/lang "$D/stage/tts/espeak-ng-data/"
SHARED=${I3D_SHARED:-$REPO/../shared}
for s in george jackson lucas yweweler; do cp "$SHARED"/data/fsdd/recordings/*_"$s"_*.wav "$D/stage/shared/data/fsdd/recordings/"; done
tar -cJf "$D/payload.tar.xz" -C "$D/stage" tts shared && rm -rf "$D/stage"
"$PY" - "$D/text_pools.json.gz" <<'PYEOF'
import gzip, json, sys
sys.path.insert(0, "recipes")
import make_corpus
pools = make_corpus.build_text_pools(0)
open(sys.argv[1], "wb").write(gzip.compress(json.dumps({"seed": 0, "pools": pools}).encode(), mtime=0))
PYEOF
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$D/whl" soundfile==0.14.0 soxr==1.1.0 cffi pycparser
du -sh "$D"/*
