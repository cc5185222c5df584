"""Diversity of a set of rewrites: self-BLEU and "embedding" diversity (mean pairwise cosine
distance of hashed character-n-gram TF-IDF vectors, so it runs anywhere with numpy)."""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def self_bleu(texts: Sequence[str], max_n: int = 4, epsilon: float = 0.1) -> float:
    """Mean BLEU-`max_n` of each text against all the others as references (higher = less
    diverse); the mean of `self_bleu_each` over the non-empty texts. nan for fewer than two."""
    scores = [b for b in self_bleu_each(texts, max_n, epsilon) if not math.isnan(b)]
    return float(np.mean(scores)) if scores else math.nan


def novelty_ranks(texts: Sequence[str]) -> list[float]:
    """Each text's in-group novelty rank in [0, 1] (Jailbreak-R1's in-group self-BLEU rank):
    texts ordered by `self_bleu_each` from the most like the others (rank 0) to the least (rank
    1), ties sharing their mean rank; an empty text counts as the most alike. All 0 for fewer
    than two texts (no group to be novel in)."""
    n = len(texts)
    if n < 2:
        return [0.0] * n
    bleu = [math.inf if math.isnan(b) else b for b in self_bleu_each(texts)]
    order = sorted(range(n), key=lambda i: -bleu[i])
    ranks = [0.0] * n
    start = 0
    while start < n:
        end = start
        while end + 1 < n and bleu[order[end + 1]] == bleu[order[start]]:
            end += 1
        for j in range(start, end + 1):
            ranks[order[j]] = (start + end) / 2 / (n - 1)
        start = end + 1
    return ranks


def self_bleu_each(texts: Sequence[str], max_n: int = 4, epsilon: float = 0.1) -> list[float]:
    """BLEU-`max_n` of each text against all the others as references (nan for an empty text,
    all nan for fewer than two texts). Clipped n-gram precisions with multiple references, the
    closest-length brevity penalty, and Chen & Cherry (2014) smoothing 1: a zero n-gram match
    count becomes `epsilon`."""
    tokens = [tokenize(t) for t in texts]
    if len(tokens) < 2:
        return [math.nan] * len(tokens)
    counts = [[_ngrams(t, n) for n in range(1, max_n + 1)] for t in tokens]
    # For each n-gram, the two largest counts (with owners): "max over the other texts" is then
    # the top count unless the hypothesis owns it. Linear in the corpus, not quadratic.
    top: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(max_n)]
    for i, per_n in enumerate(counts):
        for k, counter in enumerate(per_n):
            for gram, c in counter.items():
                best, owner, second = top[k].get(gram, (0, -1, 0))
                if c > best:
                    top[k][gram] = (c, i, best)
                elif c > second:
                    top[k][gram] = (best, owner, c)
    lengths = np.array([len(t) for t in tokens])
    scores = []
    for i, per_n in enumerate(counts):
        hyp_len = len(tokens[i])
        if hyp_len == 0:
            scores.append(math.nan)
            continue
        log_p = 0.0
        for k, counter in enumerate(per_n):
            total = sum(counter.values())
            if total == 0:
                log_p += math.log(epsilon / 1.0)
                continue
            matched = 0
            for gram, c in counter.items():
                best, owner, second = top[k][gram]
                matched += min(c, second if owner == i else best)
            log_p += math.log(matched / total if matched else epsilon / total)
        others = np.delete(lengths, i)
        ref_len = int(others[np.argmin(np.abs(others - hyp_len) * 1000 + others)])
        bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        scores.append(bp * math.exp(log_p / max_n))
    return scores


def char_ngram_tfidf(
    texts: Sequence[str], n_range: tuple[int, int] = (3, 5), dim: int = 4096
) -> np.ndarray:
    """[len(texts), dim] L2-normalised TF-IDF of hashed character n-grams (crc32, so stable
    across processes, unlike `hash`)."""
    tf = np.zeros((len(texts), dim), dtype=np.float64)
    for row, text in enumerate(texts):
        s = " " + " ".join(text.lower().split()) + " "
        for n in range(n_range[0], n_range[1] + 1):
            for i in range(len(s) - n + 1):
                tf[row, zlib.crc32(s[i : i + n].encode("utf-8")) % dim] += 1.0
    df = (tf > 0).sum(axis=0)
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    x = tf * idf
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def embedding_diversity(texts: Sequence[str]) -> float:
    """Mean pairwise cosine distance of `char_ngram_tfidf` vectors (0 = all identical); nan for
    fewer than two texts."""
    if len(texts) < 2:
        return math.nan
    x = char_ngram_tfidf(texts)
    sim = x @ x.T  # [N, N]
    n = len(texts)
    mean_sim = (sim.sum() - np.trace(sim)) / (n * (n - 1))
    return float(1.0 - mean_sim)
