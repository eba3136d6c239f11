#!/usr/bin/env bash
# The GPU check: training tokens/s and MFU (ModernBERT and Qwen3-style, every attention kernel,
# padded and ragged), DeepSpeed ZeRO-2 on one GPU, sampler forwards/s at batch 1/16/64 and
# server throughput at 1/16/64 concurrent requests; a markdown table and JSON in runs/gpu_check/.
# At most about 8 minutes on one GPU. --smoke runs the same code on the CPU in under 2 minutes.
#
#   bash scripts/gpu_check.sh [--out DIR] [--peak-tflops N] [--only train zero2 sampler server]
#   bash scripts/gpu_check.sh --smoke
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec uv run python benchmarks/gpu_check.py "$@"
