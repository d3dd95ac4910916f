#!/usr/bin/env bash
# Audio and symbolic trainings side by side on one lent GPU, in back-to-back calls on the same warm machine
# (run through the device tool; the runs under $R stay on the machine between the calls):
#
#   1st call (carry .whl and the first batch of renders): start every model in $MODELS on that batch;
#            SIGTERM before the call's limit checkpoints them;
#   next call (carry .whl and the next batch): the same command resumes them on all batches so far until the
#            whole-run budget (--max-minutes, summed over the calls) is spent and the LR has annealed.
#
# Only 64 MiB travel per call and FLAC is the one format the VAE may learn from (Vorbis drops the quiet top
# octave that the mel distance measures), so the audio comes in batches of about 53 MB: .carry/<batch>/vae
# (a prerender folder), the first batch also holding symbolic.safetensors.gz for FGG and the binomial model.
# Each call leaves one tarball per model (final/ weights, losses, log) under $OUT.
#
# The shipped U-Net, FGG and binomial models: MODELS="vae unet fgg binomial" BUDGET=15.5 R=runs/gpu4
# BATCHES="s4a s4b" (the defaults). The VAE alone on the GPU: MODELS=vae BUDGET=15 SEGMENT=... R=runs/gpu5.
set -uo pipefail
MODELS=${MODELS:-vae unet fgg binomial}
BATCHES=${BATCHES:-s4a s4b}  # the .carry/ folders, in order; those carried so far are used
BUDGET=${BUDGET:-15.5}   # minutes of training per model, over all calls
SEGMENT=${SEGMENT:-500}  # seconds before SIGTERM in this call
R=${R:-runs/gpu4}
source scripts/gpu/device_env.sh
export OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p $R

# every batch of audio still on the machine, joined into one folder of links
R=$R BATCHES=$BATCHES python3 - <<'EOF'
import json, os
from pathlib import Path
out = Path(os.environ["R"]) / "audio"; out.mkdir(parents=True, exist_ok=True)
rows = []
for src in [Path(".carry", b, "vae") for b in os.environ["BATCHES"].split()]:
    if not src.is_dir():
        continue
    for line in (src / "manifest.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line); name = f"{src.parent.name}_{row['file']}"
            if not (out / name).exists():
                os.symlink((src / row["file"]).resolve(), out / name)
            rows.append({**row, "file": name})
(out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"{len(rows)} clips in {out}")
EOF
FIRST=${BATCHES%% *}
[ -f $R/symbolic.safetensors ] || [ ! -f .carry/$FIRST/symbolic.safetensors.gz ] || gunzip -c .carry/$FIRST/symbolic.safetensors.gz > $R/symbolic.safetensors

COMMON="--steps 1000000 --max-minutes $BUDGET --mixed-precision bf16 --no-progress"
run() {  # name, module, args...: this call's segment of a trainer's run
    local name=$1; shift
    run_until $SEGMENT $R/$name.log python3 -m "$@" --out $R/$name $COMMON
}
ALONE=$([ "$MODELS" = "${MODELS%% *}" ] && echo 1 || echo 0)  # one model: it gets all the loader workers
for m in $MODELS; do
    case $m in
    # --spectral-init (PCA start and zero phase head): on the CPU, held-out mel 0.482 -> 0.363 at equal time (15 min)
    vae) run vae vae.train --preset small --spectral-init --data $R/audio --batch-size 64 --num-workers $((ALONE ? 12 : 6)) & ;;
    unet) run unet waveform_diffusion.train --preset small --data $R/audio --batch-size 32 --num-workers 4 & ;;
    fgg) run fgg symbolic.train_fgg --preset small --data $R/symbolic.safetensors --batch-size 64 --lr 4e-4 --num-workers 2 & ;;
    binomial) run binomial symbolic.train_binomial --preset small --data $R/symbolic.safetensors --batch-size 64 --lr 5e-4 --num-workers 2 & ;;
    *) echo "unknown model $m"; exit 2 ;;
    esac
done
sleep 120; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
wait
pack_runs $R $MODELS
