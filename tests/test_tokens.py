"""Offline tiktoken: the packaged encodings are placed in a cache and nothing is ever downloaded."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from coach import tokens


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection or tiktoken download attempt fails the test."""
    import tiktoken.load

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)


def test_cache_file_is_named_by_the_sha1_of_the_url() -> None:
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    assert tokens.cache_file_name("cl100k_base") == hashlib.sha1(url.encode()).hexdigest()


def test_counts_and_truncates_offline(no_network: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    tokens.get_encoding.cache_clear()
    import tiktoken.registry

    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # force tiktoken to load the file again
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("<|endoftext|>") > 1  # user text is never a special token
    assert (tmp_path / "fresh" / "tiktoken" / tokens.cache_file_name("cl100k_base")).is_file()
    text = "Unscheduled downtime fell from 10 h/yr to 8 h/yr, saving $200K a year."
    short = tokens.truncate_tokens(text, 5)
    assert text.startswith(short) and tokens.count_tokens(short) == 5
    assert tokens.truncate_tokens(text, 1000) == text
    assert tokens.truncate_tokens(text, 0) == ""


def test_a_corrupt_cache_file_is_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    target = cache / tokens.cache_file_name("cl100k_base")
    target.write_bytes(b"corrupt")
    tokens.prepare_cache(cache)
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == tokens._SHA256["cl100k_base"]
    assert not [p for p in cache.iterdir() if p.name.startswith(".tiktoken-")]  # no temp file left behind


def test_o200k_is_available_too(tmp_path: Path) -> None:
    tokens.prepare_cache(tmp_path, names=("o200k_base",))
    assert (tmp_path / tokens.cache_file_name("o200k_base")).stat().st_size > 1_000_000
