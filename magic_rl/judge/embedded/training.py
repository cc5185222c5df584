"""Training the embedded judge: BCE on the three signals, row-wise Adagrad on the embedding rows a
batch touches, Adam on the heads; `evaluate_judge` scores accuracy per signal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from magic_rl.judge.embedded.examples import JudgeExample
from magic_rl.judge.embedded.features import JudgeModelConfig, hashed_features
from magic_rl.judge.embedded.model import (
    SIGNALS,
    EmbeddedJudge,
    _build_net,
    _prompt_bags,
    _reply_bags,
    mean_bag,
)

if TYPE_CHECKING:
    import torch


def _targets(examples: Sequence[JudgeExample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prompt_y = np.array([e.prompt_harmful for e in examples], dtype=np.float32)
    resp_y = np.array(
        [
            (float(bool(e.response_refusal)), float(bool(e.response_harmful)))
            for e in examples
            if e.response is not None
        ],
        dtype=np.float32,
    ).reshape(-1, 2)
    has = np.array([e.response is not None for e in examples], dtype=bool)
    return prompt_y, resp_y, has


class _RowAdagrad:
    """Row-wise Adagrad on an embedding table: only the rows a batch touched move.

    Why not autograd + SparseAdam: coalescing sparse gradients of ~10^5 indices per batch cost
    ~100 ms a step; gathering the batch's unique rows into a small dense leaf costs ~1 ms.
    """

    def __init__(
        self, table: torch.Tensor, lr: float, weight_decay: float = 0.0, eps: float = 1e-8
    ):
        import torch

        self.table, self.lr, self.eps, self.weight_decay = table, lr, eps, weight_decay
        self.sum_sq = torch.zeros(table.shape[0], dtype=table.dtype)

    def gather(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(unique rows, their values as a grad-requiring leaf, ids remapped into them)."""
        import torch

        # np.unique without its sort: ids index a fixed table, so a mask over the table finds
        # the unique rows (ascending, as np.unique) in linear time.
        seen = np.zeros(self.table.shape[0], dtype=bool)
        seen[ids] = True
        uniq = np.flatnonzero(seen)
        inv = (np.cumsum(seen) - 1)[ids]
        rows = torch.from_numpy(uniq)
        return rows, self.table[rows].requires_grad_(True), torch.from_numpy(inv)

    def step(self, rows: torch.Tensor, leaf: torch.Tensor) -> None:
        import torch

        if leaf.grad is None:
            return
        g = leaf.grad + self.weight_decay * leaf.detach()
        # rows are unique, so index_add_ is the in-place update without a gather and a scatter
        self.sum_sq.index_add_(0, rows, g.pow(2).mean(dim=1))
        scale = self.lr / (self.sum_sq[rows].sqrt() + self.eps)
        with torch.no_grad():
            self.table.index_add_(0, rows, -(scale.unsqueeze(1) * g))


def train_embedded_judge(
    examples: Sequence[JudgeExample],
    *,
    epochs: int = 8,
    seed: int = 0,
    lr: float = 3e-3,
    batch_size: int = 256,
    feature_dropout: float = 0.0,
    weight_decay: float = 0.0,
    cfg: JudgeModelConfig | None = None,
) -> EmbeddedJudge:
    """Train on labeled exchanges with BCE on the three signals; returns the judge in eval mode.

    The heads train with Adam at `lr`; the embedding tables with row-wise Adagrad at `10 * lr`.
    Same examples + seed give the same weights.
    """
    import torch

    if not examples:
        raise ValueError("train_embedded_judge: no examples")
    cfg = cfg or JudgeModelConfig()
    threads = torch.get_num_threads()
    # Per-step tensors are small (~1e5 elements): intra-op threads cost more than they save, ~10x
    # on a loaded 2-core machine (165 ms vs 15 ms a step, measured).
    torch.set_num_threads(1)
    try:
        return _train(
            examples,
            epochs=epochs,
            seed=seed,
            lr=lr,
            batch_size=batch_size,
            feature_dropout=feature_dropout,
            weight_decay=weight_decay,
            cfg=cfg,
        )
    finally:
        torch.set_num_threads(threads)


def _train(
    examples: Sequence[JudgeExample],
    *,
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
    feature_dropout: float,
    weight_decay: float,
    cfg: JudgeModelConfig,
) -> EmbeddedJudge:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = _build_net(cfg)
    prompt_opt = _RowAdagrad(net.prompt_bag.weight.data, lr * 10, weight_decay)
    response_opt = _RowAdagrad(net.response_bag.weight.data, lr * 10, weight_decay)
    head_opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    prompt_y, resp_y, has = _targets(examples)
    resp_row = np.cumsum(has) - 1  # example index -> row of resp_y

    # Features of each distinct text, computed once: prompts repeat across their replies and
    # replies repeat across prompts. A batch pools each distinct text once.
    prompts = sorted({e.prompt for e in examples})
    replies = sorted({e.response for e in examples if e.response is not None})
    prompt_row = {t: i for i, t in enumerate(prompts)}
    reply_row = {t: i for i, t in enumerate(replies)}
    prompt_feats = hashed_features(_prompt_bags(prompts, cfg), cfg)
    reply_feats = (
        hashed_features(_reply_bags(replies), cfg) if replies else (np.zeros(0, np.int64),) * 2
    )
    prompt_key = np.array([prompt_row[e.prompt] for e in examples], dtype=np.int64)
    resp_key = np.array(
        [-1 if e.response is None else reply_row[e.response] for e in examples], dtype=np.int64
    )

    def pooled(
        keys: np.ndarray, feats: tuple[np.ndarray, np.ndarray], opt: _RowAdagrad, views: int = 0
    ) -> tuple[torch.Tensor, Any]:
        """Mean bags of keys[i]'s text, [len(keys), dim], pooling each distinct text once. With
        `views` (the number of prompts), bag k + views is the decoded view of bag k: the result
        is [2 len(keys), dim], views after texts, as `prompt_vector` expects."""
        all_ids, all_off = feats
        uniq, inv = np.unique(keys, return_inverse=True)
        if views:
            inv = np.concatenate([inv.reshape(-1), inv.reshape(-1) + len(uniq)])
            uniq = np.concatenate([uniq, uniq + views])
        ends = np.append(all_off[1:], len(all_ids))
        parts = [all_ids[all_off[k] : ends[k]] for k in uniq]
        if feature_dropout > 0:
            # Drop features at random (the bias, last in each bag, stays) so no single n-gram
            # decides: the seeds are few, and their exact words are easy to memorise.
            parts = [q[np.append(gen.random(len(q) - 1) >= feature_dropout, True)] for q in parts]
        off = np.concatenate([[0], np.cumsum([len(q) for q in parts])[:-1]]).astype(np.int64)
        rows, leaf, ids = opt.gather(np.concatenate(parts))
        bags = mean_bag(leaf, ids, torch.from_numpy(off))
        return bags[torch.from_numpy(inv.reshape(-1).astype(np.int64))], (rows, leaf)

    # Batches follow a shuffled order of prompts, each prompt's examples together, so a batch
    # pools few distinct prompts (a ~5x saving) and contrasts replies to the same request.
    gen = np.random.default_rng(seed)
    net.train()
    for _ in range(epochs):
        prompt_rank = gen.permutation(len(prompts))[prompt_key]
        order = np.lexsort((gen.random(len(examples)), prompt_rank))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            bags, p_state = pooled(
                prompt_key[batch], prompt_feats, prompt_opt, len(prompts) * cfg.decode_prompts
            )
            p = net.prompt_vector(bags)
            replied = batch[has[batch]]
            with_response = torch.from_numpy(np.flatnonzero(has[batch]))
            r_state = None
            if len(replied):
                bags, r_state = pooled(resp_key[replied], reply_feats, response_opt, len(replies))
                r = net.response_vector(bags)
            else:
                r = p.new_zeros((0, cfg.dim))
            pl, rl = net.heads(p, r, with_response)
            loss = F.binary_cross_entropy_with_logits(pl, torch.from_numpy(prompt_y[batch]))
            if len(replied):
                target = torch.from_numpy(resp_y[resp_row[replied]])
                loss = loss + F.binary_cross_entropy_with_logits(rl, target)
            head_opt.zero_grad()
            loss.backward()
            head_opt.step()
            prompt_opt.step(*p_state)
            if r_state is not None:
                response_opt.step(*r_state)
    return EmbeddedJudge(net, cfg)


def evaluate_judge(judge: Any, examples: Sequence[JudgeExample]) -> dict[str, float]:
    """Per-signal accuracy of any Judge on labeled examples (unknown verdicts count as wrong).

    prompt_harmful is scored on every example; reply signals on examples with a reply. Also returns
    the counts `n_prompt` and `n_response`.
    """
    verdicts = judge.judge([e.prompt for e in examples], [e.response for e in examples])
    hits = dict.fromkeys(SIGNALS, 0)
    n_resp = 0
    for e, v in zip(examples, verdicts, strict=True):
        hits["prompt_harmful"] += v.prompt_harmful == e.prompt_harmful
        if e.response is not None:
            n_resp += 1
            hits["response_refusal"] += v.response_refusal == e.response_refusal
            hits["response_harmful"] += v.response_harmful == e.response_harmful
    n = len(examples)
    return {
        "prompt_harmful": hits["prompt_harmful"] / max(n, 1),
        "response_refusal": hits["response_refusal"] / max(n_resp, 1),
        "response_harmful": hits["response_harmful"] / max(n_resp, 1),
        "n_prompt": float(n),
        "n_response": float(n_resp),
    }
