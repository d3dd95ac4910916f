#!/usr/bin/env bash
# SLURM launcher: 2 nodes × 8 GPUs. Usage: sbatch scripts/slurm_train.sh latent_diffusion.train --preset small ...
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
set -euo pipefail
MODULE=$1; shift
MAIN_IP=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun bash -c "accelerate launch --config_file configs/accelerate/2node_8gpu.yaml \
    --machine_rank \$SLURM_NODEID --main_process_ip $MAIN_IP -m $MODULE $*"
