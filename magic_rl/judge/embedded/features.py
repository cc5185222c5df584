"""Featurisation of the embedded judge: each text -> a bag of hashed n-gram ids, vectorised numpy
over a batch (prompts and replies also through `content.decoded_view`, the sandbox's four ciphers
read back); `JudgeModelConfig`."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from magic_rl.content import decoded_view

__all__ = ["JudgeModelConfig", "decoded_view", "hashed_features"]

_P = np.uint64(0x100000001B3)  # FNV prime: multiplier of the rolling byte hash
_MIX = np.uint64(0x9E3779B97F4A7C15)
_PUNCT = re.compile(r"([^\w\s])")


@dataclass(frozen=True)
class JudgeModelConfig:
    """Shape of the embedded judge; saved as JSON next to the weights."""

    n_buckets: int = 1 << 18
    dim: int = 32
    hidden: int = 64
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    max_bytes: int = 3000  # the judge reads at most this many bytes of each text
    decode_prompts: bool = True  # also pool `decoded_view(prompt)` and mix it into p

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> JudgeModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known - {"format"}
        if unknown:
            raise ValueError(f"{source}: unknown judge config fields {sorted(unknown)}")
        fields = {k: v for k, v in data.items() if k in known}
        if "char_ngrams" in fields:
            fields["char_ngrams"] = tuple(int(n) for n in fields["char_ngrams"])
        return cls(**fields)


def _normalise(text: str, max_bytes: int) -> bytes:
    # Spaces around punctuation make "that." and "that" one word; leading/trailing spaces mark the
    # text's edges for the byte n-grams.
    spaced = " ".join(_PUNCT.sub(r" \1 ", text.lower()).split())
    return (" " + spaced + " ").encode("utf-8", "replace")[:max_bytes]


def _mix(h: np.ndarray, salt: int, n_buckets: int) -> np.ndarray:
    h = h + np.uint64((salt * 0x9E3779B97F4A7C15) % (1 << 64))
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return (h % np.uint64(n_buckets)).astype(np.int64)


def _word_features(
    words: list[list[bytes]], cfg: JudgeModelConfig, docs: list, ids: list
) -> np.ndarray:
    """Append hashed word uni- and bi-grams of each doc to (docs, ids); return words per doc."""
    n_docs = len(words)
    counts = np.fromiter((len(w) for w in words), dtype=np.int64, count=n_docs)
    wh = np.fromiter(
        (zlib.crc32(w) for ws in words for w in ws), dtype=np.uint64, count=int(counts.sum())
    )
    wdoc = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    docs.append(wdoc)
    ids.append(_mix(wh, 101, cfg.n_buckets))
    same = wdoc[1:] == wdoc[:-1]
    docs.append(wdoc[1:][same])
    ids.append(_mix(wh[:-1][same] * _P + wh[1:][same], 102, cfg.n_buckets))
    return counts


def hashed_features(texts: Sequence[str], cfg: JudgeModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Bags of hashed features for a batch: (ids [total] int64, offsets [len(texts)] int64).

    Features of text i are ids[offsets[i]:offsets[i+1]], ready for `nn.EmbeddingBag`.
    """
    enc = [_normalise(t, cfg.max_bytes) for t in texts]
    n_docs = len(enc)
    lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=n_docs)
    # One buffer for the whole batch, texts separated by a 0 byte; n-grams spanning one are dropped.
    buf = np.frombuffer(b"\x00".join(enc) + b"\x00", dtype=np.uint8).astype(np.uint64)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lens + 1)
    zeros = np.concatenate([[0], np.cumsum(buf == 0)])
    docs, ids = [], []

    h = np.zeros(len(buf), dtype=np.uint64)
    for n in range(1, max(cfg.char_ngrams) + 1):
        m = len(buf) - n + 1
        if m <= 0:
            break
        h = h[:m] * _P + buf[n - 1 : n - 1 + m]
        if n in cfg.char_ngrams:
            ok = (zeros[n : n + m] - zeros[:m]) == 0
            docs.append(doc_of[:m][ok])
            ids.append(_mix(h[ok], n, cfg.n_buckets))

    counts = _word_features([e.split() for e in enc], cfg, docs, ids)

    # Bias (so no bag is empty) and a log2 length bucket (empty / short / truncated replies).
    length_bucket = np.log2(counts + 1).astype(np.uint64)
    docs.append(np.arange(n_docs, dtype=np.int64))
    ids.append(_mix(length_bucket, 103, cfg.n_buckets))
    docs.append(np.arange(n_docs, dtype=np.int64))
    ids.append(_mix(np.zeros(n_docs, dtype=np.uint64), 104, cfg.n_buckets))

    doc = np.concatenate(docs)
    order = np.argsort(doc, kind="stable")
    flat = np.concatenate(ids)[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(doc, minlength=n_docs))[:-1]])
    return flat, offsets.astype(np.int64)
