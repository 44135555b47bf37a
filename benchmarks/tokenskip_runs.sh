#!/usr/bin/env bash
# TokenSkip trained on the default model and measured (issue: TokenSkip, trained and measured).
# Every step is resumable: rerun the same command after a stop and it picks up where it was
# (training from its last checkpoint, benchmarks from their rows).
#   bash benchmarks/tokenskip_runs.sh data      # the model's own correct GSM8K train CoTs
#   bash benchmarks/tokenskip_runs.sh train     # LoRA on the embedded Qwen2.5-Coder-1.5B (CPU)
#   bash benchmarks/tokenskip_runs.sh gguf      # the adapter as a llama.cpp LoRA
#   bash benchmarks/tokenskip_runs.sh eval      # GSM8K test and SVAMP, gamma 1.0/0.7/0.5
#   bash benchmarks/tokenskip_runs.sh combine   # a TALE budget on the tuned model (dev slice)
#   bash benchmarks/tokenskip_runs.sh report    # tables, plots, the adapter card
# The held-out items are the first 100 of the default-selection held-out samples (seed 22:
# `tale bench` samples so that --limit 100 is a subset of --limit 300), so vanilla and the
# TALE default rows of benchmarks/default_selection.sh pair with these by item.
set -euo pipefail
cd "$(dirname "$0")/.."
TALE=${TALE:-.venv/bin/tale}
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
R=benchmarks/results
RUNS=${RUNS:-runs/tokenskip}
BASE_MODEL=qwen2.5-coder-1.5b
GAMMAS="tokenskip@1.0,tokenskip@0.7,tokenskip@0.5"
# the default as its held-out rows name it (benchmarks/default_selection.sh heldout)
DEFAULT=${DEFAULT:-vanilla+ex3}
# the TALE budget combined with the tuned model: the default states no budget, so the budget
# alone, in the wording the base model's profile gives it (no exemplars: the tuned model
# learned the bare question)
COMBINE=${COMBINE:-tale-heuristic@system}
BASELINE=vanilla,vanilla-paper
TRAIN_ITEMS="$DATA/gsm8k/train.norm.jsonl"

case "${1:-}" in
  data)
    # search (train items 0-99) and both default-selection dev stages (disjoint train items
    # after 100): their correct, uncut vanilla CoTs, one per question, one ratio each
    mkdir -p "$RUNS"
    "$TALE" export tokenskip "$R/search-gsm8k-train.jsonl" "$R/screen-gsm8k-train.jsonl" \
      "$R/confirm-gsm8k-train.jsonl" --data "$TRAIN_ITEMS" --ratios 1.0,0.9,0.7,0.5 \
      --out "$RUNS/data.jsonl"
    ;;
  train)
    # the paper's LoRA (rank 8, alpha 16, all linear layers). Measured on this 2-core CPU: 73-79 s
    # per optimizer step of 4 examples (18 s an example; 88-95 s with TRL's default gradient
    # checkpointing, off here). Only the card is committed, not the weights, so a machine that
    # does not keep runs/ must retrain before it evaluates: 32 steps (128 of the 236 examples,
    # each seen once, 42 min) leave a 3 h session time to evaluate (~20 s an answer with the
    # adapter; `eval` is ~3.3 h in all, so it may span sessions: the rows' model name carries
    # adapter.gguf's sha256 prefix, 607ced3a for the committed rows, and `tale bench` refuses
    # to resume a file another adapter answered). The paper's 5e-5 runs ~2,600 steps over
    # 7,473 examples; for 32 steps the rate is 2e-4. MAX_STEPS=-1 EPOCHS=2: all 236 twice.
    "$TALE" train tokenskip "$RUNS/data.jsonl" --base "$BASE_MODEL" --out "$RUNS" \
      --epochs "${EPOCHS:-1}" --lr "${LR:-2e-4}" --max-steps "${MAX_STEPS:-32}" --save-steps 8
    ;;
  gguf)
    "$TALE" train gguf "$RUNS/adapter" --base "$BASE_MODEL" --out "$RUNS/adapter.gguf"
    ;;
  eval)
    for set in "gsm8k-test:$DATA/gsm8k/test.norm.jsonl" \
      "svamp:$DATA/holdout/svamp/svamp.norm.jsonl"; do
      name=${set%%:*}
      "$TALE" bench --lora "$RUNS/adapter.gguf" --data "${set#*:}" --methods "$GAMMAS" \
        --baseline tokenskip@1.0 --limit 100 --seed 22 --by-method --out "$R/tokenskip-$name.jsonl"
    done
    ;;
  combine)
    # a dev slice the adapter never trained on: GSM8K train after 100, less the stages' items
    # (and not in the adapter's data); 20 items (~16 min): what the session has left after eval
    dev=(--data "$TRAIN_ITEMS" --offset 100 --limit "${COMBINE_LIMIT:-20}" --seed 25
      --exclude "$R/screen-gsm8k-train.jsonl" --exclude "$R/confirm-gsm8k-train.jsonl")
    "$TALE" bench --no-adapter "${dev[@]}" --methods "vanilla,$COMBINE" --baseline vanilla \
      --by-method \
      --out "$R/tokenskip-combine-base.jsonl"
    "$TALE" bench "${dev[@]}" --lora "$RUNS/adapter.gguf" --by-method --baseline tokenskip@1.0 \
      --methods "tokenskip@1.0,$COMBINE" --out "$R/tokenskip-combine-tuned.jsonl"
    ;;
  report)
    cp "$RUNS/adapter/tale-card.json" "$R/tokenskip-card.json"
    for name in gsm8k-test svamp; do
      "$PY" benchmarks/train_eval.py "$R/heldout-$name.jsonl" "$R/tokenskip-$name.jsonl" \
        --methods "$GAMMAS" --before-methods "$DEFAULT" --baseline "$BASELINE" \
        --table "$R/tokenskip-$name.md" --plot "$R/tokenskip-$name.png"
    done
    "$PY" benchmarks/train_eval.py "$R/tokenskip-combine-base.jsonl" \
      "$R/tokenskip-combine-tuned.jsonl" --methods "tokenskip@1.0,$COMBINE" \
      --before-methods "$COMBINE" --baseline vanilla --table "$R/tokenskip-combine.md" \
      --plot "$R/tokenskip-combine.png"
    ;;
  *)
    echo "usage: $0 data|train|gguf|eval|combine|report" >&2
    exit 2
    ;;
esac
