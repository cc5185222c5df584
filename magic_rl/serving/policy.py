"""`magic serve policy`: any Hugging Face causal LM behind `/v1/chat/completions` and `/v1/completions`.

`PolicyServer(policy, model_name)` answers OpenAI chat and text completions from an `HFPolicy` (a
sandbox model, a run's checkpoint, a fetched model): chats go through the model's chat template
(`HFPolicy.encode_chats`), text prompts through its tokenizer (BOS added, as vLLM does), and
concurrent requests are decoded together by one worker thread (`Batcher`) with the policy's
batched sampler (`HFPolicy.generate_ids`: one left-padded batch, KV cache, finished rows
dropped). Requests batch together when their temperature, top-p and max_tokens agree. The shared
sampler draws a batch from one generator, so a `seed` is exact for a request decoded alone (the
same seed and prompt give the same text) and, in a batch, seeds the batch's generator from the
seeds of its requests: reproducible for the same concurrent requests, not whatever else is in
flight as vLLM's per-request generators are (docs/deviations.md). Honoured: temperature (0 = greedy), top_p, max_tokens / max_completion_tokens, n
(rows of the same batch), seed, stop (strings, cut after decoding). Not implemented: streaming,
logprobs, penalties (ignored, like other unknown fields). A prompt that leaves no room in the
model's positions gets vLLM's 400. Any other `Policy` (e.g. `ScriptedPolicy`, for tests) is
served through `generate` for chat requests only.

Limits, auth and transport are `serving.Server`'s (docs/serving.md).

Run: `magic serve policy --model sandbox:base --port 8001`, then any OpenAI client with
`base_url="http://127.0.0.1:8001/v1"`; in tests `PolicyServer(policy, "m").start()`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from magic_rl.policy.base import Chat, Policy
from magic_rl.serving import openai
from magic_rl.serving.batcher import Batcher, Overloaded
from magic_rl.serving.server import HTTPError, Limits, Server, read_json, wait_for_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One request's work: chats (chat route) or text prompts (completions route), n each."""

    chats: tuple[tuple[tuple[str, str], ...], ...] | None
    prompts: tuple[str, ...] | None
    sampling: openai.Sampling

    def key(self) -> tuple:
        s = self.sampling
        return (s.temperature, s.top_p, s.max_tokens)


@dataclass(frozen=True)
class Result:
    """(text, finish_reason) per choice, and the token counts for `usage`."""

    choices: list[tuple[str, str]]
    prompt_tokens: int
    completion_tokens: int


class PolicyServer(Server):
    """A `Server` answering completions from one policy; the model runs on the batch thread."""

    def __init__(
        self,
        policy: Policy,
        model_name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        limits: Limits | None = None,
        caps: openai.Caps | None = None,
        max_batch: int = 16,
    ) -> None:
        self.policy = policy
        self.caps = caps or openai.Caps()
        self.hf = hasattr(policy, "generate_ids")
        if self.hf and getattr(policy, "max_batch_size", None) is None:
            policy.max_batch_size = max_batch * self.caps.max_n  # rows decoded together
        config = getattr(getattr(policy, "model", None), "config", None)
        self.context = getattr(config, "max_position_embeddings", None)
        super().__init__(host, port, model_name=model_name, api_key=api_key, limits=limits)
        self.batcher: Batcher[Job, Result | HTTPError] = Batcher(
            self._run_batch, max_batch=max_batch, name="policy"
        )

    def routes(self) -> dict:
        return {"/v1/chat/completions": self._chat, "/v1/completions": self._completion}

    def close(self) -> None:
        self.batcher.close()

    # --- HTTP ----------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        payload = await read_json(request, self.limits)
        self.check_model(payload)
        messages = openai.messages(payload)
        chat = tuple((m["role"], m["content"]) for m in messages)
        job = Job((chat,), None, openai.sampling(payload, self.caps, self.caps.max_tokens))
        result = await self._submit(request, job)
        use = openai.usage(result.prompt_tokens, result.completion_tokens)
        return JSONResponse(openai.chat_body(self.model_name, result.choices, use))

    async def _completion(self, request: Request) -> Response:
        payload = await read_json(request, self.limits)
        self.check_model(payload)
        if not self.hf:
            raise HTTPError(400, "this policy serves /v1/chat/completions only")
        prompts = openai.prompts(payload, self.caps)
        job = Job(None, tuple(prompts), openai.sampling(payload, self.caps, 16))
        result = await self._submit(request, job)
        use = openai.usage(result.prompt_tokens, result.completion_tokens)
        return JSONResponse(openai.completion_body(self.model_name, result.choices, use))

    async def _submit(self, request: Request, job: Job) -> Result:
        try:
            result = await wait_for_model(request, self.batcher.submit(job))
        except Overloaded as e:
            raise HTTPError(503, f"server busy: {e}") from None
        if isinstance(result, HTTPError):
            raise result
        return result

    # --- the batch thread ----------------------------------------------------------------------

    def _run_batch(self, jobs: list[Job]) -> list[Result | HTTPError]:
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.key(), []).append(i)
        results: list[Result | HTTPError | None] = [None] * len(jobs)
        for members in groups.values():
            group = [jobs[i] for i in members]
            run = self._decode_ids if self.hf else self._decode_scripted
            start = time.perf_counter()
            out = run(group)
            done = [r for r in out if isinstance(r, Result)]
            prompt = sum(r.prompt_tokens for r in done)
            new = sum(r.completion_tokens for r in done)
            seconds = time.perf_counter() - start
            log.info(
                "batch: %d requests, %d prompt + %d completion tokens in %.1f s (%.1f tokens/s)",
                len(group), prompt, new, seconds, (prompt + new) / max(seconds, 1e-9),
            )  # fmt: skip
            for i, r in zip(members, out, strict=True):
                results[i] = r
        return results  # type: ignore[return-value]

    def _decode_ids(self, jobs: list[Job]) -> list[Result | HTTPError]:
        """Encode every job's inputs, decode all rows (n per input) in one call, split back."""
        policy: Any = self.policy
        s = jobs[0].sampling
        seed = batch_seed([job.sampling.seed for job in jobs])
        encoded: list[list[list[int]] | HTTPError] = []
        for job in jobs:
            if job.chats is not None:
                if getattr(policy.tokenizer, "chat_template", None) is None:
                    encoded.append(
                        HTTPError(400, "the model has no chat template; use /v1/completions")
                    )
                    continue
                ids = policy.encode_chats(
                    [[{"role": r, "content": c} for r, c in ch] for ch in job.chats]
                )
            else:
                ids = [policy.tokenizer(p)["input_ids"] for p in job.prompts]
            encoded.append(self._check_context(ids, job.sampling.max_tokens))
        rows = [
            p for job, ids in zip(jobs, encoded, strict=True) if not isinstance(ids, HTTPError)
            for p in ids for _ in range(job.sampling.n)
        ]  # fmt: skip
        tokens: list[list[int]] = []
        stopped: list[bool] = []
        if rows:
            tokens, _, stopped = policy.generate_ids(
                rows,
                temperature=s.temperature,
                top_p=s.top_p,
                max_new_tokens=s.max_tokens,
                seed=seed,
            )
        texts = policy.tokenizer.batch_decode(
            [t[:-1] if f else t for t, f in zip(tokens, stopped, strict=True)],
            skip_special_tokens=True,
        )
        out: list[Result | HTTPError] = []
        k = 0
        for job, ids in zip(jobs, encoded, strict=True):
            if isinstance(ids, HTTPError):
                out.append(ids)
                continue
            m = len(ids) * job.sampling.n
            choices = [
                _stop(text, "stop" if f else "length", job.sampling.stop)
                for text, f in zip(texts[k : k + m], stopped[k : k + m], strict=True)
            ]
            used = sum(len(t) for t in tokens[k : k + m])
            out.append(Result(choices, sum(len(p) for p in ids), used))
            k += m
        return out

    def _check_context(self, ids: list[list[int]], max_tokens: int) -> list[list[int]] | HTTPError:
        if min(len(p) for p in ids) == 0:  # `prompt: ""` with a tokenizer that adds no BOS
            return HTTPError(400, "'prompt' is empty: it encodes to no tokens", "prompt")
        longest = max(len(p) for p in ids)
        if self.context is not None and longest >= self.context:
            return HTTPError(
                400,
                f"This model's maximum context length is {self.context} tokens. However, you "
                f"requested {longest + max_tokens} tokens ({longest} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or "
                "completion.",
            )
        return ids

    def _decode_scripted(self, jobs: list[Job]) -> list[Result | HTTPError]:
        out: list[Result | HTTPError] = []
        for job in jobs:
            s = job.sampling
            chats: list[Chat] = [
                [{"role": r, "content": c} for r, c in ch] for ch in job.chats or ()
            ]
            gens = self.policy.generate(
                [c for c in chats for _ in range(s.n)],
                temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_tokens, seed=s.seed,
            )  # fmt: skip
            choices = [_stop(g.text, g.finish, s.stop) for g in gens]
            out.append(
                Result(
                    choices,
                    sum(len(g.prompt_ids) for g in gens),
                    sum(len(g.completion_ids) for g in gens),
                )
            )
        return out


def batch_seed(seeds: list[int | None]) -> int | None:
    """The generator seed of a batch: a lone request's own seed; else one derived from all the
    seeds given (stable across processes); None if no request set one."""
    given = [s for s in seeds if s is not None]
    if not given:
        return None
    if len(seeds) == 1:
        return given[0]
    digest = hashlib.sha256(repr(sorted(given)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _stop(text: str, finish: str, stop: tuple[str, ...]) -> tuple[str, str]:
    """Cut `text` at the first of the stop strings (finish "stop"), as the OpenAI API does."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(cuts)], "stop") if cuts else (text, finish)
