#!/usr/bin/env bash
# The main job end to end on the embedded offline defaults, on a laptop, no network:
#   augtext generate (the reference descriptions; QS_LLM=1 adds SmolLM2-135M-Instruct) -> augtext embed (bundled
#   all-MiniLM-L6-v2)
#   -> hiva_core synth (SynthAU faces from the ICT-FaceKit model) -> hiva_core train (small HiVA, offline ImageNet
#   MobileNetV2) -> hiva_core eval (per-AU F1 table on held-out identities).
# Everything lands in $QS (default quickstart/); every step is cached/resumable, so a rerun only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HIVA_VENV:-.venv}
[ -x "$VENV/bin/hiva_core" ] || bash scripts/install.sh
VENV=$(cd "$VENV" && pwd)  # HIVA_VENV may be relative to the checkout or absolute
export PATH="$VENV/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
QS=${QS:-quickstart}
N_FACES=${N_FACES:-1800}
EPOCHS=${EPOCHS:-12}

# The prior: the project's reference descriptions (offline, seconds). QS_LLM=1 adds descriptions written by the
# bundled SmolLM2-135M-Instruct (about 10 minutes on 2 cores), validated and gated like any LLM's.
augtext generate --au bp4d --n 8 --cache "$QS/cache"
if [ "${QS_LLM:-0}" = 1 ]; then
    rc=0  # exit 1: some pairs ended short of --n (a tiny model); what passed is kept and used
    augtext generate --au bp4d --backend hf --n 3 --styles appearance,anatomical --max-tokens 160 --few-shot 2 \
        --cache "$QS/cache" || rc=$?
    [ "$rc" -le 1 ] || exit "$rc"
fi
augtext embed --cache "$QS/cache"
augtext stats --cache "$QS/cache" --samples 1   # ends with the prior-quality line (augtext score)
# Renders of an older SynthAU format or label default (a quick start run before an upgrade) are derived data: render
# them afresh.
python - "$QS/synthau/synth.json" <<'EOF' 2>/dev/null || rm -rf "$QS/synthau"
import json, sys
from hiva_core.synth.sampling import DEFAULT_LABELS, labels_label, parse_labels
from hiva_core.synth.writer import FORMAT_VERSION
meta = json.load(open(sys.argv[1]))
sys.exit(meta.get("format_version") != FORMAT_VERSION or meta.get("labels") != labels_label(parse_labels(DEFAULT_LABELS)))
EOF
hiva_core synth --out "$QS/synthau" --n "$N_FACES" --size 128 --seed 0
rm -rf "$QS/runs/hiva"  # the quick start always trains afresh (train refuses to overwrite a finished run)
hiva_core train --text-cache "$QS/cache" --data "$QS/synthau" --out "$QS/runs/hiva" --fold 1 \
    --model hiva --backbone mobilenetv2 --pretrained --epochs "$EPOCHS" --batch-size 32 --lr 1e-3 --image-size 128 \
    --set data.aus=bp4d --set data.num_workers=0
hiva_core eval --run "$QS/runs/hiva" --data "$QS/synthau" --fold 1 --json "$QS/runs/hiva/eval.json"
