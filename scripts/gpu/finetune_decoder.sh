#!/usr/bin/env bash
# One GPU call: fine-tune the shipped VAE's decoder (encoder frozen, so the DiT's latent space is unchanged)
# in several variants side by side on one lent GPU, from a folder of FLAC pieces carried with the call.
# Prepared on the CPU; it has not run on a GPU yet:
#   python scripts/gpu/flac_pieces.py build/gpu4/vae_flac .carry/s17v/vae --seconds 1.8 --megabytes 46
#   bash scripts/gpu/travel_light.sh vae      # only checkpoints/vae travels; `--restore` afterwards
#   pip download auraloss soundfile cffi pycparser into .whl (scripts/gpu/device_env.sh installs them there)
# then through the device tool, with .whl and .carry/s17v in `carry`:
#   AUDIO=.carry/s17v/vae R=/root/s17 bash scripts/gpu/finetune_decoder.sh
# Each variant leaves <name>.tgz (final/ weights, losses, log) under $OUT. Pick one on validation renders of the
# held-out style, then score that one alone on the test renders (checkpoints/vae/README.md, Evaluation):
#   python -m musicprod_common.prerender --pop909 ../shared/data/pop909 --split valid --styles mallets --count 24 \
#       --seconds 6 --seed 33 --out build/s17/vae_valid
#   python -m vae.evaluate --checkpoint VARIANT/final --data build/s17/vae_valid --no-baseline --out VARIANT.json
# and, before shipping, the downstream checks the decoder feeds, clip by clip against the shipped one (a CPU mel
# fine-tune was better on every VAE clip but lost 6 of 32 style-transfer clips and gained none, so it stayed out):
#   python benchmarks/style_transfer.py --pop909 ../shared/data/pop909 --classifier checkpoints/classifier \
#       --checkpoints DIR_WITH_vae_AND_dit --style-a piano --style-b strings --n 32 --strength 0.5 --weight 1 --out style.json
set -uo pipefail
AUDIO=${AUDIO:-.carry/s17v/vae}
R=${R:-/root/s17}
BUDGET=${BUDGET:-8}            # minutes of training per variant (the LR cosine anneals over them)
VARIANTS=${VARIANTS:-"plain mel adv"}
source scripts/gpu/device_env.sh
export OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p $R
[ -d $R/vae_init ] || cp -r checkpoints/vae $R/vae_init   # later calls may not carry the VAE
[ -d $R/audio ] || cp -r $AUDIO $R/audio

COMMON="--init $R/vae_init --data $R/audio --clip-seconds 1.8 --crops-per-clip 4096 --batch-size 64 --num-workers 4
        --steps 1000000 --max-minutes $BUDGET --warmup-steps 100 --mixed-precision bf16 --no-progress"
RECON="--w-adv 0 --w-feat 0 --betas 0.9 0.999 --lr 3e-4"   # a plain fine-tune on reconstruction losses
for v in $VARIANTS; do
    case $v in
    plain) extra="$RECON" ;;                                 # the stage-1 losses
    mel) extra="$RECON --w-mel 1" ;;                         # + multi-resolution log-mel L1 (HiFi-GAN, Vocos)
    adv) extra="--w-mel 1" ;;                                # + the multi-scale STFT discriminator (its defaults)
    *) echo "unknown variant $v"; exit 2 ;;
    esac
    run_until $(python3 -c "print(int($BUDGET * 60 + 90))") $R/$v.log python3 -m vae.adversarial $COMMON $extra --out $R/$v &
done
sleep 90; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
wait
pack_runs $R $VARIANTS
