"""Training recipes: TALE-PT (SFT, DPO) and TokenSkip (LoRA SFT) on the exported data.

``tale train sft|dpo|tokenskip DATA --base MODEL --out DIR`` runs TRL's ``SFTTrainer`` /
``DPOTrainer`` with a PEFT LoRA adapter. Defaults are the papers' (TALE-PT: LoRA r 8, alpha 32,
SFT 3 epochs at lr 1e-4, DPO 2 epochs at lr 3e-5 with beta 0.5; TokenSkip: r 8, alpha 16, lr
5e-5, 3 epochs), all overridable. The loss is on the answer only (TRL's completion-only loss
for prompt/completion data); prompts go through the base model's chat template; runs are
seeded; checkpoints are written every ``save_steps`` and a rerun resumes from the last one.
The adapter is saved with a card (``tale-card.json`` and ``README.md``) recording the data (and
its sha256), the base model, the hyper-parameters, the loss curve and, when given, an
evaluation.

The base model is a local folder in Hugging Face layout, or a GGUF file (an embedded model's
name works too) that transformers loads and dequantises (needs ``gguf``). Nothing is
downloaded. Extra ``train`` (torch, transformers, peft, trl, accelerate, datasets) — kept out
of ``all`` because torch is large.

Example:
    .. code-block:: python

        from tale_shared.research.recipes import TrainConfig, train

        adapter = train(TrainConfig("sft", "sft.jsonl", base="/models/qwen2.5-0.5b", out="out"))
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tale_shared._io import atomic_path, atomic_writer, iter_json_lines, sha256_file
from tale_shared._optional import require

Kind = Literal["sft", "dpo", "tokenskip"]
TRAIN_INSTALL = (
    "pip install 'tale-reasoning[train]'  (torch, transformers, peft, trl, accelerate, datasets)"
)

PAPER_DEFAULTS: dict[str, dict[str, float | int]] = {
    "sft": {"lora_r": 8, "lora_alpha": 32, "epochs": 3, "learning_rate": 1e-4},
    "dpo": {"lora_r": 8, "lora_alpha": 32, "epochs": 2, "learning_rate": 3e-5, "beta": 0.5},
    "tokenskip": {"lora_r": 8, "lora_alpha": 16, "epochs": 3, "learning_rate": 5e-5},
}


@dataclass
class TrainConfig:
    """One training run; ``None`` fields take the paper's default for ``kind``."""

    kind: Kind
    data: str | Path
    base: str | Path
    out: str | Path
    epochs: float | None = None
    learning_rate: float | None = None
    lora_r: int | None = None
    lora_alpha: int | None = None
    beta: float | None = None
    batch_size: int = 1
    grad_accum: int = 4
    max_length: int = 1024
    max_steps: int = -1
    save_steps: int = 50
    seed: int = 0
    #: recompute activations in the backward pass: less memory, ~1.3x the time per step (TRL
    #: turns it on by default; a LoRA on the embedded 1.5B model fits in memory without it)
    gradient_checkpointing: bool = False
    evaluation: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> TrainConfig:
        if self.kind not in PAPER_DEFAULTS:
            raise ValueError(f"kind must be sft, dpo or tokenskip, got {self.kind!r}")
        values = asdict(self)
        for key, default in PAPER_DEFAULTS[self.kind].items():
            if values.get(key) is None:
                values[key] = default
        return TrainConfig(**values)


def _need(module: str) -> Any:
    return require(module, f"tale train needs {module}: {TRAIN_INSTALL}")


def _turns(value: Any, role: str) -> list[dict[str, str]]:
    """A chat turn list from a string or from the messages layout."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise ValueError(f"expected text or a list of messages, got {type(value).__name__}")


def read_examples(path: str | Path, kind: Kind) -> list[dict[str, Any]]:
    """The exported rows (either layout ``tale export`` writes) as TRL conversational data:
    ``prompt``/``completion`` (SFT, TokenSkip) or ``prompt``/``chosen``/``rejected`` (DPO)."""
    rows = []
    for n, row, problem in iter_json_lines(path):
        if problem is not None or not isinstance(row, dict):
            raise ValueError(f"{path}:{n} is not a JSON object ({problem or type(row).__name__})")
        try:
            rows.append(_example(row, kind))
        except KeyError as exc:
            layouts = (
                "prompt/chosen/rejected or input/preferred_output/non_preferred_output "
                "(tale export dpo)"
                if kind == "dpo"
                else "prompt/completion or messages (tale export sft|tokenskip)"
            )
            raise ValueError(
                f"{path}:{n} has no {exc.args[0]!r} field: `tale train {kind}` reads {layouts}"
            ) from None
    if not rows:
        raise ValueError(f"{path} holds no training examples")
    return rows


def _example(row: dict[str, Any], kind: Kind) -> dict[str, Any]:
    if kind == "dpo":
        if "input" in row:  # the messages layout
            prompt = row["input"]["messages"]
            chosen, rejected = row["preferred_output"], row["non_preferred_output"]
        else:
            prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
        return {
            "prompt": _turns(prompt, "user"),
            "chosen": _turns(chosen, "assistant"),
            "rejected": _turns(rejected, "assistant"),
        }
    if "messages" in row:
        messages = row["messages"]
        prompt, completion = messages[:-1], messages[-1:]
    else:
        prompt, completion = row["prompt"], row["completion"]
    return {"prompt": _turns(prompt, "user"), "completion": _turns(completion, "assistant")}


def _base_path(base: str | Path) -> Path:
    """A base model's folder or file: the path given, or an embedded model's GGUF."""
    path = Path(base)
    if not path.exists():
        from tale_shared.local.registry import resolve_model_path

        _, path = resolve_model_path(str(base))
    return path


def load_base(base: str | Path) -> tuple[Any, Any]:
    """The base model and tokenizer from a Hugging Face folder, a ``.gguf`` file or an
    embedded model's name (its GGUF, dequantised by transformers)."""
    transformers = _need("transformers")
    path = _base_path(base)
    if path.is_file() and path.suffix == ".gguf":
        _need("gguf")
        kwargs = {"gguf_file": path.name}
        tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, **kwargs)
        # the GGUF weights are dequantised to full precision on load: train them as such
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModelForCausalLM.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def last_checkpoint(folder: Path) -> str | None:
    """The newest *complete* checkpoint under ``folder``: the Trainer writes
    ``trainer_state.json`` last, so a checkpoint a stop cut short while it was being written
    lacks it and is passed over (resuming from it would fail on a missing or truncated file).

    >>> last_checkpoint(Path("no-such-folder")) is None
    True
    """
    checkpoints = sorted(
        (
            p
            for p in folder.glob("checkpoint-*")
            if p.is_dir()
            and p.name.rsplit("-", 1)[-1].isdigit()
            and (p / "trainer_state.json").is_file()
        ),
        key=lambda p: int(p.name.rsplit("-", 1)[-1]),
    )
    return str(checkpoints[-1]) if checkpoints else None


WALL_FILE = "tale-wall.json"
"""Written into each checkpoint: the training seconds spent up to it, over every stop and
resume (the time lost after a checkpoint that a stop cut short is not counted)."""


def checkpoint_wall_seconds(checkpoint: str | Path | None) -> float | None:
    """The training seconds recorded in a checkpoint: 0.0 for a fresh start, ``None`` when
    the checkpoint has no record (written by an older tale)."""
    if checkpoint is None:
        return 0.0
    try:
        return float(json.loads((Path(checkpoint) / WALL_FILE).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _wall_time(transformers: Any, prior: float | None) -> Any:
    """A Trainer callback that writes the seconds spent so far into each checkpoint."""
    start = time.monotonic()

    class WallTime(transformers.TrainerCallback):  # type: ignore[misc]
        def seconds(self) -> float:
            return (prior or 0.0) + time.monotonic() - start

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                with atomic_writer(folder / WALL_FILE) as fh:
                    json.dump({"seconds": self.seconds(), "complete": prior is not None}, fh)

    return WallTime()


def train(config: TrainConfig, *, progress: bool = True) -> Path:
    """Train the adapter; returns its folder (``out/adapter``). Resumes from ``out``'s last
    checkpoint when there is one."""
    cfg = config.resolved()
    datasets = _need("datasets")
    peft = _need("peft")
    trl = _need("trl")
    transformers = _need("transformers")
    transformers.set_seed(cfg.seed)
    out = Path(cfg.out)
    checkpoints = out / "checkpoints"
    examples = read_examples(cfg.data, cfg.kind)
    model, tokenizer = load_base(cfg.base)
    lora = peft.LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.05,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    torch = _need("torch")
    gpu = bool(torch.cuda.is_available())
    common: dict[str, Any] = {
        "output_dir": str(checkpoints),
        "bf16": gpu and bool(torch.cuda.is_bf16_supported()),
        "use_cpu": not gpu,
        "num_train_epochs": cfg.epochs,
        "learning_rate": cfg.learning_rate,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "max_steps": cfg.max_steps,
        "logging_steps": 1,
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "seed": cfg.seed,
        "report_to": [],
        "disable_tqdm": not progress,
        "max_length": cfg.max_length,
        "gradient_checkpointing": cfg.gradient_checkpointing,
    }
    dataset = datasets.Dataset.from_list(examples)
    if cfg.kind == "dpo":
        args = trl.DPOConfig(beta=cfg.beta, **common)
        trainer = trl.DPOTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
        )
    else:
        args = trl.SFTConfig(completion_only_loss=True, **common)
        trainer = trl.SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
        )
    resume = last_checkpoint(checkpoints)
    prior = checkpoint_wall_seconds(resume)
    wall = _wall_time(transformers, prior)
    trainer.add_callback(wall)
    result = trainer.train(resume_from_checkpoint=resume)
    adapter = out / "adapter"
    trainer.model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = dict(result.metrics)
    # every stop and resume together; None when a checkpoint resumed from kept no record
    metrics["wall_seconds"] = round(wall.seconds(), 1) if prior is not None else None
    write_card(adapter, cfg, losses=losses, metrics=metrics)
    return adapter


def write_card(
    adapter: Path, cfg: TrainConfig, *, losses: list[float], metrics: dict[str, Any]
) -> None:
    """``tale-card.json`` and a ``README.md`` that say how the adapter was made."""
    digest = sha256_file(cfg.data)
    card: dict[str, Any] = {
        "kind": cfg.kind,
        "base_model": str(cfg.base),
        "data": str(cfg.data),
        "data_sha256": digest,
        "hyperparameters": {
            k: v for k, v in asdict(cfg).items() if k not in ("data", "base", "out", "evaluation")
        },
        "loss": losses,
        "train_metrics": metrics,
        "evaluation": cfg.evaluation,
    }
    with atomic_writer(adapter / "tale-card.json") as fh:
        json.dump(card, fh, indent=2, default=str)
    lines = [
        f"# tale {cfg.kind} adapter",
        "",
        f"- base model: `{cfg.base}`",
        f"- data: `{cfg.data}` (sha256 `{card['data_sha256'][:16]}...`)",
        f"- hyper-parameters: `{json.dumps(card['hyperparameters'], default=str)}`",
        f"- loss: first {losses[0]:.4f}, last {losses[-1]:.4f}"
        if losses
        else "- loss: none logged",
        f"- evaluation: `{json.dumps(cfg.evaluation)}`" if cfg.evaluation else "- evaluation: none",
    ]
    if metrics.get("wall_seconds") is not None:
        lines.insert(-1, f"- training time: {metrics['wall_seconds'] / 3600:.2f} h (every resume)")
    with atomic_writer(adapter / "README.md") as fh:
        fh.write("\n".join(lines) + "\n")


def record_evaluation(adapter: str | Path, evaluation: dict[str, Any], table: str = "") -> None:
    """Add an evaluation (and its Markdown table) to an adapter's card."""
    folder = Path(adapter)
    card = json.loads((folder / "tale-card.json").read_text())
    card["evaluation"] = evaluation
    with atomic_writer(folder / "tale-card.json") as fh:
        json.dump(card, fh, indent=2, default=str)
    readme = (folder / "README.md").read_text().splitlines()
    kept = [line for line in readme if not line.startswith("- evaluation:")]
    kept.append(f"- evaluation: `{json.dumps(evaluation, default=str)}`")
    if table:
        kept += ["", table]
    with atomic_writer(folder / "README.md") as fh:
        fh.write("\n".join(kept) + "\n")


def merge(adapter: str | Path, out: str | Path, base: str | Path | None = None) -> Path:
    """Merge a LoRA adapter into its base model and save the result (Hugging Face layout).
    Turn it into GGUF for llama.cpp with llama.cpp's ``convert_hf_to_gguf.py OUT`` (see the
    README); ``tale ask --model OUT.gguf`` then runs it. For the embedded models,
    :func:`adapter_to_gguf` is shorter: the adapter runs on the unchanged quantised base."""
    peft = _need("peft")
    card = json.loads((Path(adapter) / "tale-card.json").read_text())
    model, tokenizer = load_base(base or card["base_model"])
    merged = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    target = Path(out)
    merged.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def examples_tokens(path: str | Path, kind: Kind, tokenizer: Any) -> Iterator[int]:
    """Token count of each example with the tokenizer's chat template (for throughput)."""
    for ex in read_examples(path, kind):
        turns = ex["prompt"] + ex.get("completion", ex.get("chosen", []))
        text = tokenizer.apply_chat_template(turns, tokenize=False)
        yield len(tokenizer(text, add_special_tokens=False)["input_ids"])


# llama.cpp stores the q/k projections of these architectures with rows permuted for its
# rotary layout (convert_hf_to_gguf.py's ``LlamaModel.permute``); transformers undoes that on
# load, so a LoRA ``B`` trained in Hugging Face layout is permuted back here.
_PERMUTED_QK = {"llama"}
_ADAPTER_ARCHS = {"llama", "qwen2", "qwen3"}
_HF_ARCH = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "mistral": "llama"}


def _permute_rows(rows: Any, n_head: int) -> Any:
    return (
        rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def _base_layout(base: str | Path) -> tuple[str, int, int, int]:
    """``(architecture, blocks, heads, kv heads)`` of a GGUF file, an embedded model or a
    Hugging Face folder."""
    path = _base_path(base)
    if path.is_file() and path.suffix == ".gguf":
        gguf = _need("gguf")
        reader = gguf.GGUFReader(str(path))

        def field(key: str) -> Any:
            f = reader.fields[key]
            value = f.parts[f.data[0]]
            return bytes(value).decode() if key == "general.architecture" else int(value[0])

        arch = field("general.architecture")
        return (
            arch,
            field(f"{arch}.block_count"),
            field(f"{arch}.attention.head_count"),
            field(f"{arch}.attention.head_count_kv"),
        )
    config = json.loads((path / "config.json").read_text())
    arch = _HF_ARCH.get(config.get("model_type", ""), config.get("model_type", "?"))
    heads = int(config["num_attention_heads"])
    return (
        arch,
        int(config["num_hidden_layers"]),
        heads,
        int(config.get("num_key_value_heads", heads)),
    )


def adapter_to_gguf(
    adapter: str | Path,
    out: str | Path,
    base: str | Path | None = None,
    *,
    dtype: Literal["f16", "f32"] = "f16",
) -> Path:
    """Write a PEFT LoRA adapter as a llama.cpp LoRA GGUF (what llama.cpp's
    ``convert_lora_to_gguf.py`` makes), so the embedded model runs it on its unchanged
    quantised weights: ``tale ask --lora OUT`` or ``LocalChatModel(lora=OUT)``. Supports the
    llama, qwen2 and qwen3 architectures (the embedded models'); needs ``gguf``, ``numpy`` and
    ``safetensors``, not torch. ``dtype``: the tensors' type, ``f16`` (half the size; llama.cpp's
    converter's default too) or ``f32``.

    Example:
        .. code-block:: python

            adapter_to_gguf("runs/sft/adapter", "runs/sft.gguf")  # base from the adapter's card
    """
    if dtype not in ("f16", "f32"):  # before any file is read
        raise ValueError(f"dtype must be 'f16' or 'f32', not {dtype!r}")
    folder = Path(adapter)
    config = json.loads((folder / "adapter_config.json").read_text())
    if base is None:
        card = folder / "tale-card.json"
        if not card.is_file():
            raise ValueError(f"{folder} has no tale-card.json: pass the base model")
        base = json.loads(card.read_text())["base_model"]
    gguf = _need("gguf")

    safetensors_numpy = _need("safetensors.numpy")
    arch, blocks, heads, kv_heads = _base_layout(base)
    if arch not in _ADAPTER_ARCHS:
        raise ValueError(
            f"{arch} adapters are not converted here; use llama.cpp's convert_lora_to_gguf.py"
        )
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError("adapters with per-layer rank or alpha are not supported")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("use_rslora"):
        alpha *= rank**0.5  # llama.cpp scales by alpha / r; rsLoRA by alpha / sqrt(r)
    weights = safetensors_numpy.load_file(str(folder / "adapter_model.safetensors"))
    names = gguf.get_tensor_name_map({v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch], blocks)
    pairs = sorted({k.rsplit(".lora_", 1)[0] for k in weights if ".lora_" in k})
    if not pairs:
        raise ValueError(f"{folder} holds no LoRA weights")
    target_path = Path(out)
    with atomic_path(target_path) as partial:  # renamed when complete, removed on failure
        _write_adapter_gguf(
            gguf, partial, arch, alpha, pairs, weights, names, heads, kv_heads, dtype
        )
    card_path = folder / "tale-card.json"
    if card_path.is_file():  # the card travels with the file llama.cpp loads
        card = json.loads(card_path.read_text())
        card["gguf_sha256"] = sha256_file(target_path)
        card["gguf_dtype"] = dtype
        with atomic_writer(gguf_card_path(target_path)) as fh:
            json.dump(card, fh, indent=2, default=str)
    return target_path


def gguf_card_path(gguf_file: str | Path) -> Path:
    """Where an adapter GGUF's card lies: ``tale-pt.gguf`` -> ``tale-pt.card.json``.

    >>> gguf_card_path("runs/tale-pt.gguf").name
    'tale-pt.card.json'
    """
    path = Path(gguf_file)
    return path.with_name(path.name.removesuffix(".gguf") + ".card.json")


def _write_adapter_gguf(
    gguf: Any,
    partial: Path,
    arch: str,
    alpha: float,
    pairs: list[str],
    weights: dict[str, Any],
    names: Any,
    heads: int,
    kv_heads: int,
    dtype: str,
) -> None:
    import numpy as np

    out_type = np.float16 if dtype == "f16" else np.float32
    writer = gguf.GGUFWriter(str(partial), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for module in pairs:
        a = weights[f"{module}.lora_A.weight"].astype(out_type)
        b = weights[f"{module}.lora_B.weight"].astype(out_type)
        hf_name = module.removeprefix("base_model.model.")
        target = names.get_name(hf_name + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise ValueError(f"no llama.cpp tensor for {hf_name}")
        if arch in _PERMUTED_QK and hf_name.endswith("q_proj"):
            b = _permute_rows(b, heads)
        elif arch in _PERMUTED_QK and hf_name.endswith("k_proj"):
            b = _permute_rows(b, kv_heads)
        # ggml reverses numpy's shape: lora_a is [in, r] and lora_b [r, out] there, as
        # llama.cpp expects
        writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
