"""tale train: a tiny randomly initialised model, a few steps on the CPU (seconds)."""

import json
import os

import pytest

from tale_shared.research.recipes import PAPER_DEFAULTS, TrainConfig, read_examples

needs_train = pytest.mark.skipif(
    not os.environ.get("TALE_REQUIRE_TRAIN")
    and any(
        __import__("importlib").util.find_spec(m) is None
        for m in ("torch", "transformers", "peft", "trl", "datasets")
    ),
    reason="needs tale[train]",
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

    from tale_shared.research.recipes import merge, train

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

    # a rerun resumes from the last checkpoint: nothing is trained again
    again = json.loads((train(cfg, progress=False) / "tale-card.json").read_text())
    assert len(again["loss"]) == len(losses) and again["loss"][:5] == losses[:5]
