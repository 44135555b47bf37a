import pytest

from tale_shared.prompts import (
    ANSWER_FORMAT,
    Message,
    PromptStyle,
    get_style,
    list_styles,
    register_style,
)

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"


def test_paper_style_is_the_reference_wording_with_format_first():
    (msg,) = get_style("paper").render(Q, 120)
    assert msg.role == "user"
    assert msg.content.startswith(Q)
    assert "Let's think step by step and use less than 120 tokens." in msg.content
    assert msg.content.index(ANSWER_FORMAT) < msg.content.index("use less than")


def test_words_style_converts_tokens_to_words_and_puts_format_last():
    style = get_style("words")
    (msg,) = style.render(Q, 100)
    assert "at most 75 words" in msg.content
    assert msg.content.rstrip().endswith(style.answer_format)
    assert style.with_options(words_per_token=0.5).instruction(100).count("50 words") == 1


def test_system_style_states_the_budget_in_the_system_message():
    system, user = get_style("system").render(Q, 80)
    assert system.role == "system" and "80 tokens" in system.content
    assert user.role == "user" and "80" not in user.content


def test_chain_of_draft_and_vanilla_need_no_budget():
    (msg,) = get_style("chain-of-draft").render(Q, None)
    assert "5 words at most" in msg.content and "####" in msg.content
    (plain,) = get_style("vanilla").render(Q, None)
    assert plain.content.endswith(ANSWER_FORMAT) and "Let's think step by step." in plain.content


@pytest.mark.parametrize("budget", [0, -1, None])
def test_a_budget_style_refuses_a_missing_or_non_positive_budget(budget):
    with pytest.raises(ValueError):
        get_style("paper").instruction(budget)


def test_empty_question_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        get_style("words").render("   \n", 100)


def test_apply_places_the_sentence_in_the_last_user_or_system_message():
    convo = [
        Message("system", "Be nice."),
        Message("user", "first"),
        Message("assistant", "ok"),
        Message("user", Q),
    ]
    out = get_style("tokens").apply(convo, 50)
    assert out[-1].content.endswith("use less than 50 tokens.") and out[1].content == "first"
    assert convo[-1].content == Q  # input not mutated
    sys_out = get_style("system").apply(convo, 50)
    assert sys_out[0].content.startswith("Be nice.") and "50 tokens" in sys_out[0].content
    no_sys = get_style("system").apply([Message("user", Q)], 50)
    assert [m.role for m in no_sys] == ["system", "user"]


def test_registry_lists_required_styles_and_rejects_unknown_and_duplicates():
    names = {s.name for s in list_styles()}
    assert {"paper", "tokens", "words", "system", "chain-of-draft", "vanilla"} <= names
    with pytest.raises(ValueError, match="known styles"):
        get_style("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_style(PromptStyle(name="paper", description="x", template="{budget}"))
