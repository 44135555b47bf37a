"""The same model under another name keeps its profile; a different model does not."""

from __future__ import annotations

import pytest

from tale_shared.model_identity import model_identity
from tale_shared.profiles import method_for, profile_for

DEFAULT_METHOD = "vanilla+ex3"
QWEN_PROFILE = "local/qwen2.5-coder-1.5b"


@pytest.mark.parametrize(
    "name",
    [
        "local/qwen2.5-coder-1.5b",  # embedded
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",  # llama-cpp-python's server
        "qwen2.5-coder:1.5b",  # Ollama
        "ollama:qwen2.5-coder:1.5b",  # init_chat_model spec
        "Qwen/Qwen2.5-Coder-1.5B-Instruct",  # vLLM, Hugging Face
        "hosted_vllm/Qwen/Qwen2.5-Coder-1.5B-Instruct",
        "Qwen2.5-Coder-1.5B-Instruct-GGUF",
        "qwen2.5-coder-1.5b",  # plain
        "local/qwen2.5-coder-1.5b-instruct-q4_k_m",  # the GGUF file loaded by path
    ],
)
def test_every_spelling_of_the_default_model_gets_its_profile(name):
    profile = profile_for(name)
    assert profile.model == QWEN_PROFILE and profile.source == "builtin"
    method = method_for(name)
    assert method.spec == DEFAULT_METHOD
    assert method.name == f"tale ({DEFAULT_METHOD}; profile {QWEN_PROFILE})"


@pytest.mark.parametrize(
    "name",
    [
        "Qwen/Qwen2.5-Coder-1.5B",  # the base model
        "qwen2.5-coder:1.5b-base",
        "qwen2.5-coder:7b",  # another size
        "Qwen/Qwen2.5-1.5B-Instruct",  # another family (not the coder)
        "local/qwen2.5-coder-1.5b+tale-pt-sft",  # a fine-tune behaves differently
        "gpt-4o-mini",
        "claude-sonnet-4-5",
    ],
)
def test_other_models_get_the_default_and_are_told_how_to_calibrate(name):
    profile = profile_for(name)
    assert profile.source == "default" and profile.model == name
    assert "tale calibrate --model" in profile.notes
    if name.startswith("local/"):  # a fine-tune: the base model and its adapter
        assert "--model qwen2.5-coder-1.5b --lora ADAPTER.gguf" in profile.notes
    elif ":" in name:  # an Ollama tag
        assert f"tale calibrate --model ollama:{name}`" in profile.notes
    else:  # a bare name: a served model's (its URL) or an API model's (provider:)
        assert f"--model URL#{name}`" in profile.notes
        assert f"--model provider:{name}`" in profile.notes
    assert method_for(name).name == "tale (tale-heuristic@paper; no profile)"


def test_smollm2_under_its_file_name_keeps_its_profile():
    assert profile_for("SmolLM2-135M-Instruct.Q4_1.gguf").model == "local/smollm2-135m"


def test_identity_ignores_quantisation_and_organisation():
    a = model_identity("bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF")
    b = model_identity("qwen2.5-coder-1.5b-instruct-q8_0.gguf")
    assert a is not None and b is not None and a.matches(b)
    assert a.size_b == 1.5 and a.variant == "instruct"


def test_a_saved_profile_still_wins_for_its_exact_name(tmp_path):
    from tale_shared.profiles import ModelProfile, save_profile

    save_profile(ModelProfile(model="qwen2.5-coder:1.5b", style="words", source="calibrated"))
    assert method_for("qwen2.5-coder:1.5b").name == "tale (tale-heuristic@words; saved profile)"
    # the other spellings keep the built-in profile
    assert profile_for("Qwen/Qwen2.5-Coder-1.5B-Instruct").source == "builtin"


def test_every_entry_point_says_which_profile_it_used():
    """TaleRunnable and TaleQueryTransform name the profile that matched an Ollama model."""
    from langchain_core.language_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    from langchain_tale import TaleRunnable
    from llama_index_tale import TaleQueryTransform

    class OllamaNamedChat(FakeListChatModel):
        model: str = "qwen2.5-coder:1.5b"

    class OllamaNamedLLM(MockLLM):
        model: str = "qwen2.5-coder:1.5b"

    runnable = TaleRunnable(llm=OllamaNamedChat(responses=["[[8]]"]))
    assert runnable.resolved_method.name.endswith(f"; profile {QWEN_PROFILE})")
    transform = TaleQueryTransform(llm=OllamaNamedLLM())
    metadata: dict[str, object] = {}
    transform.run("What is 3 + 5?", metadata=metadata)
    assert metadata["tale"]["method"] == (  # type: ignore[index]
        f"tale (tale-heuristic@system: the budget; profile {QWEN_PROFILE}, "
        "whose method vanilla+ex3 states none)"
    )
