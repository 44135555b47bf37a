#!/usr/bin/env bash
# Install tale into a virtual environment (.venv, or $TALE_VENV) with the given extras
# (default: local), building llama-cpp-python from source in a way that runs on every x86-64
# CPU it is built on.
#
#   bash scripts/install.sh                 # tale[local]: the embedded model
#   bash scripts/install.sh all,dev,train   # what scripts/test.sh installs
#   TALE_VENV=/tmp/v TALE_TARGET=dist/tale_reasoning-0.2.0-py3-none-any.whl \
#     bash scripts/install.sh local         # a built wheel instead of this checkout
#
# Why: llama-cpp-python ships as source and builds llama.cpp with -march=native. On Intel
# CPUs with AMX (Sapphire Rapids and later, most current cloud VMs) that compiles ggml's AMX
# kernels in, and llama.cpp 0.3.x runs them on threads without the AMX tile permission: the
# process dies with "Illegal instruction" on the first token. The build below keeps
# -march=native (AVX-512, AVX2, VNNI... wherever the CPU has them) and switches the AMX
# instruction sets off, so those kernels are not compiled (tale_shared/local/native_probe.py
# checks any other build once and explains a crash). The wheel is built once per version,
# flags and CPU, and kept in tale's cache ($XDG_CACHE_HOME/tale/wheels): pip's own wheel cache
# does not know the flags, so it is not used for this build.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-local}"
VENV="${TALE_VENV:-.venv}"
LLAMA_CPP_VERSION="0.3.36"
SAFE_BUILD_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"

python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip

needs_llama=0
for extra in ${EXTRAS//,/ }; do
  case "$extra" in local | all | dev) needs_llama=1 ;; esac
done

if [[ $needs_llama == 1 && $(uname -m) =~ ^(x86_64|amd64)$ ]]; then
  cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -a)
  py_tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  key=$(printf '%s\n' "$LLAMA_CPP_VERSION" "$SAFE_BUILD_FLAGS" "$cpu_flags" "$py_tag" |
    sha256sum | cut -c1-16)
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/tale/wheels/llama-cpp-python-$key"
  wheel=$(ls "$wheels"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z $wheel ]]; then
    echo "building llama-cpp-python $LLAMA_CPP_VERSION without the AMX kernels (about 10 min on 2 cores)..."
    mkdir -p "$wheels"
    CMAKE_ARGS="-DGGML_NATIVE=ON ${CMAKE_ARGS:-}" \
      CFLAGS="${CFLAGS:-} $SAFE_BUILD_FLAGS" CXXFLAGS="${CXXFLAGS:-} $SAFE_BUILD_FLAGS" \
      "$PY" -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
      -w "$wheels" "llama-cpp-python==$LLAMA_CPP_VERSION"
    wheel=$(ls "$wheels"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl | head -n1)
  fi
  # replace whatever build is there (pip would keep an installed 0.3.x of the same version)
  "$PY" -m pip install --quiet --force-reinstall --no-deps "$wheel"
  "$PY" -m pip install --quiet "$wheel"
fi

if [[ -n ${TALE_TARGET:-} ]]; then
  "$PY" -m pip install --quiet "$TALE_TARGET[$EXTRAS]"
else
  "$PY" -m pip install --quiet -e ".[$EXTRAS]"
fi
echo "installed tale-reasoning[$EXTRAS] into $VENV"
