#!/usr/bin/env bash
# TALE-PT as the default (issue 38), by the rule in results/tale-pt-selection-rule.md.
# Every stage is resumable: rerun the same command after a stop and it picks up where it was.
# One model process at a time (llama.cpp's threads spin: two processes both crawl).
#   bash benchmarks/tale_pt_runs.sh data        # base-model answers to fresh GSM8K train items
#   bash benchmarks/tale_pt_runs.sh export      # the training file (>= 600 examples)
#   bash benchmarks/tale_pt_runs.sh train       # LoRA SFT on this CPU, checkpoints every 5 steps
#   bash benchmarks/tale_pt_runs.sh gguf        # the adapter as a llama.cpp LoRA GGUF
#   bash benchmarks/tale_pt_runs.sh following   # budgets 25/50/100/200 on 30 dev items, both models
#   bash benchmarks/tale_pt_runs.sh dev         # candidates B, C, D on GSM8K dev 200 + MATH dev 40
#   bash benchmarks/tale_pt_runs.sh heldout     # DEFAULT=<spec> [ADAPTER=1]: the report
set -euo pipefail
cd "$(dirname "$0")/.."
TALE=${TALE:-.venv/bin/tale}
DATA=${DATA:-../shared/data}
R=benchmarks/results
BASE_MODEL=qwen2.5-coder-1.5b
ADAPTER_GGUF=${ADAPTER_GGUF:-runs/tale-pt.gguf}
LEAVE_OUT=(--exclude "$R/confirm-gsm8k-train.jsonl" --exclude "$R/screen-gsm8k-train.jsonl"
  --exclude "$R/search-gsm8k-train.jsonl")
BUDGETS="tale-fixed:25@system,tale-fixed:50@system,tale-fixed:100@system,tale-fixed:200@system"

case "${1:-}" in
  data)
    "$TALE" bench --no-adapter --data "$DATA/gsm8k/train.norm.jsonl" "${LEAVE_OUT[@]}" \
      --limit 1000 --seed 38 \
      --methods vanilla+ex3 --baseline vanilla+ex3 --threads 2 --max-tokens 512 \
      --out "$R/tale-pt-data-gsm8k-train.jsonl"
    ;;
  export)
    "$TALE" export self "$R/tale-pt-data-gsm8k-train.jsonl" "$R/screen-gsm8k-train.jsonl" \
      "$R/search-gsm8k-train.jsonl" --data "$DATA/gsm8k/train.norm.jsonl" \
      --model "local/$BASE_MODEL" --leave-out "$R/confirm-gsm8k-train.jsonl" \
      --out "$R/tale-pt-train.jsonl"
    ;;
  train)
    "$TALE" train sft "$R/tale-pt-train.jsonl" --base "$BASE_MODEL" --out runs/tale-pt \
      --epochs 1 --lr 1e-4 --lora-r 8 --lora-alpha 32 --batch-size 1 --grad-accum 4 \
      --max-length 1024 --save-steps 5 --seed 0 --gguf "$ADAPTER_GGUF"
    ;;
  gguf)
    "$TALE" train gguf runs/tale-pt/adapter --base "$BASE_MODEL" --out "$ADAPTER_GGUF"
    ;;
  following)
    # the first 30 GSM8K dev items by id (the confirm stage's 200, never trained on)
    .venv/bin/python - "$R/confirm-gsm8k-train.jsonl" "$DATA/gsm8k/train.norm.jsonl" \
      runs/tale-pt-following-items.jsonl <<'PY'
import json, sys
dev = sorted({json.loads(line)["id"] for line in open(sys.argv[1]) if line.strip()})[:30]
items = {json.loads(line)["id"]: line for line in open(sys.argv[2]) if line.strip()}
with open(sys.argv[3], "w") as out:
    out.writelines(items[i] for i in dev)
PY
    for who in base tuned; do
      lora=(--no-adapter)
      [[ $who == tuned ]] && lora=(--lora "$ADAPTER_GGUF")
      "$TALE" bench --data runs/tale-pt-following-items.jsonl --methods "$BUDGETS" \
        --baseline tale-fixed:200@system --by-method "${lora[@]}" \
        --out "$R/tale-pt-following-$who.jsonl"
    done
    "$TALE" following "$R/tale-pt-following-base.jsonl" "$R/tale-pt-following-tuned.jsonl" \
      --table "$R/tale-pt-following.md" --plot "$R/tale-pt-following.png"
    ;;
  dev)
    METHODS=${METHODS:-vanilla,tale-heuristic@system,vanilla+ex3}
    "$TALE" bench --data "$DATA/gsm8k/train.norm.jsonl" --offset 100 --limit 200 --seed 2 \
      --exclude "$R/screen-gsm8k-train.jsonl" --methods "$METHODS" --baseline "$METHODS" \
      --by-method --lora "$ADAPTER_GGUF" --out "$R/tale-pt-dev-gsm8k-train.jsonl"
    "$TALE" bench --data "$DATA/math500-dev/dev.norm.jsonl" --limit 40 --seed 0 \
      --methods "$METHODS" --baseline "$METHODS" --by-method --lora "$ADAPTER_GGUF" \
      --max-tokens 1536 --out "$R/tale-pt-dev-math500-dev.jsonl"
    ;;
  heldout)
    : "${DEFAULT:?set DEFAULT to the method the rule chose}"
    lora=(--no-adapter)
    [[ ${ADAPTER:-1} == 1 ]] && lora=(--lora "$ADAPTER_GGUF")
    run() {  # run NAME DATA [options...]: the chosen default's rows beside the base rows
      local name=$1 data=$2
      shift 2
      "$TALE" bench --data "$data" --methods "$DEFAULT" --baseline "$DEFAULT" --by-method \
        "${lora[@]}" --out "$R/tale-pt-$name.jsonl" "$@"
    }
    retime() {  # retime NAME DATA VANILLA [options...]: the default and the stronger vanilla
      # (base model) on 60 of the same items, one after the other in the same sitting, for a
      # seconds ratio (machines differ ~2x, so rows timed in another session are not paired)
      local name=$1 data=$2 vanilla=$3
      shift 3
      "$TALE" bench --data "$data" --methods "$DEFAULT" --baseline "$DEFAULT" "${lora[@]}" \
        --limit 60 --seed 22 --out "$R/tale-pt-retime-default-$name.jsonl" "$@"
      "$TALE" bench --no-adapter --data "$data" --methods "$vanilla" --baseline "$vanilla" \
        --limit 60 --seed 22 --out "$R/tale-pt-retime-$name.jsonl" "$@"
    }
    # the stronger of vanilla and vanilla-paper on each set's base rows (heldout-*.md)
    run heldout-gsm8k-test "$DATA/gsm8k/test.norm.jsonl" --limit 300 --seed 22
    retime gsm8k-test "$DATA/gsm8k/test.norm.jsonl" vanilla-paper
    run heldout-svamp "$DATA/holdout/svamp/svamp.norm.jsonl" --limit 300 --seed 22
    retime svamp "$DATA/holdout/svamp/svamp.norm.jsonl" vanilla
    run heldout-math500-test "$DATA/holdout/math500/test.norm.jsonl" --limit 150 --seed 22 \
      --max-tokens 1536
    retime math500-test "$DATA/holdout/math500/test.norm.jsonl" vanilla-paper --max-tokens 1536
    ;;
  *)
    echo "usage: $0 data | export | train | gguf | following | dev | heldout" >&2
    exit 2
    ;;
esac
