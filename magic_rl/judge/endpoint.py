"""A guard model behind an OpenAI-compatible endpoint (how vLLM serves them): `EndpointJudge`.

Chat formats (Qwen3Guard-Gen, Llama Guard 3) POST `{endpoint}/chat/completions` and let the server
apply the model's chat template; raw-prompt formats (WildGuard) POST `{endpoint}/completions`. All
calls of a batch go out concurrently (at most `cfg.concurrency` in flight, one `httpx.AsyncClient`),
greedy, `max_tokens` = the format's answer budget. A raw prompt's leading `<s>` is dropped because
the server adds BOS when it tokenises (the local `HFGuardJudge` keeps it and adds none).

Failure policy (never a hang, never a silent "safe"):
- timeout, connection error, HTTP 5xx/408/429 or an unreadable body: retried `cfg.retries` times with
  exponential backoff (`cfg.backoff_s`, doubling, +10% jitter); if a call still fails the whole batch
  raises `JudgeUnavailable` naming the URL and the last error.
- HTTP 401/403/404 (wrong key, URL or model name): `JudgeUnavailable` at once, no retries.
- other HTTP 4xx (e.g. a prompt over the context length): that exchange's signals are unknown with
  the HTTP error as `Verdict.error`; the batch goes on.
- an answer that does not parse: signals unknown, `error` starting with "parse", counted.

The judge sees at most `cfg.max_response_tokens` of each reply: counted with `tokenizer` when one is
given (pass the guard model's), else approximately by whitespace words (see
`formats.truncate_response`). The API key is read from the environment variable named by
`cfg.api_key_env` when the judge is built, sent as a bearer header, and never shown in `repr` or logs.

Run: `python -m pytest -q tests/test_judge_endpoint.py`; against a served judge:
`magic serve judge --port 8000` then `judge.endpoint=http://127.0.0.1:8000/v1`.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from magic_rl.config import JudgeConfig
from magic_rl.judge.formats import Call, get_format
from magic_rl.judge.score import CallCache, JudgeStats, assemble, plan_calls, split_cached
from magic_rl.records import Verdict


class JudgeUnavailable(RuntimeError):
    """The judge service could not answer after retries (or refused us outright)."""


def _answer_text(body: Any, chat: bool) -> str:
    choice = body["choices"][0]
    text = choice["message"]["content"] if chat else choice["text"]
    if text is not None and not isinstance(text, str):
        raise TypeError(f"answer is {type(text).__name__}, not text")
    return text or ""


class EndpointJudge:
    """A WildGuard / Qwen3Guard / Llama Guard 3 model behind an OpenAI-compatible URL."""

    def __init__(
        self,
        cfg: JudgeConfig,
        *,
        tokenizer: Any = None,
        cache_path: str | Path | None = None,
        transport: Any = None,
    ) -> None:
        if not cfg.endpoint:
            raise ValueError("EndpointJudge needs judge.endpoint (e.g. http://127.0.0.1:8000/v1)")
        self.cfg = cfg
        self.fmt = get_format(cfg.backend, cfg.controversial)
        self.name = cfg.backend
        self.url = cfg.endpoint.rstrip("/")
        self.tokenizer = tokenizer
        self.stats = JudgeStats()
        self.cache = CallCache(cache_path) if cfg.cache else None
        self._transport = transport  # tests may pass an httpx mock transport
        self._headers = {"Content-Type": "application/json"}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ValueError(
                    f"judge.api_key_env names ${cfg.api_key_env}, which is unset or empty"
                )
            self._headers["Authorization"] = f"Bearer {key}"

    def __repr__(self) -> str:
        key = f"${self.cfg.api_key_env}" if self.cfg.api_key_env else None
        return (
            f"EndpointJudge(backend={self.cfg.backend!r}, url={self.url!r}, "
            f"model={self.cfg.model!r}, api_key_env={key!r})"
        )

    def judge(self, prompts: Sequence[str], responses: Sequence[str | None]) -> list[Verdict]:
        """Synchronous `ajudge`; runs in a worker thread when called from inside an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.ajudge(prompts, responses))
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.ajudge(prompts, responses)).result()

    async def ajudge(
        self, prompts: Sequence[str], responses: Sequence[str | None]
    ) -> list[Verdict]:
        exchanges, calls = plan_calls(
            self.fmt, prompts, responses, self.cfg.max_response_tokens, self.tokenizer
        )
        answers, todo = split_cached(calls, self.cache, self._key, self.stats)
        failures: dict[Call, str] = {}
        if todo:
            fresh, failures = await self._send_all(todo)
            answers |= fresh
        verdicts, clean = assemble(self.fmt, exchanges, answers, failures, self.stats)
        if self.cache is not None:
            self.cache.put_many({self._key(c): answers[c] for c in clean if c in answers})
        return verdicts

    def _key(self, call: Call) -> tuple[str, str, str, str | None]:
        return (self.name, self.cfg.model, call[0], call[1])

    async def _send_all(self, calls: list[Call]) -> tuple[dict[Call, str], dict[Call, str]]:
        import httpx

        limit = asyncio.Semaphore(self.cfg.concurrency)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.cfg.timeout_s),
            headers=self._headers,
            limits=httpx.Limits(max_connections=self.cfg.concurrency),
            transport=self._transport,
        ) as client:
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._send(client, limit, c)) for c in calls]
            except* JudgeUnavailable as eg:
                raise eg.exceptions[0] from None
        answers: dict[Call, str] = {}
        failures: dict[Call, str] = {}
        for call, task in zip(calls, tasks, strict=True):
            answer, failure = task.result()
            if failure:
                failures[call] = failure
            else:
                answers[call] = answer
        return answers, failures

    async def _send(self, client: Any, limit: asyncio.Semaphore, call: Call) -> tuple[str, str]:
        """(answer, "") or ("", failure) for one call, with retries; raises JudgeUnavailable."""
        import httpx

        request = self.fmt.request(*call)
        chat = not isinstance(request, str)
        if not chat:  # the server's tokenizer adds BOS itself (vLLM /completions does)
            request = request.removeprefix("<s>")
        url = f"{self.url}/chat/completions" if chat else f"{self.url}/completions"
        body: dict[str, Any] = {"messages": request} if chat else {"prompt": request}
        body |= {"model": self.cfg.model, "max_tokens": self.fmt.max_new_tokens, "temperature": 0.0}
        last_error = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = self.cfg.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (1.0 + 0.1 * random.random()))
            async with limit:
                self.stats.requests += 1
                try:
                    r = await client.post(url, json=body)
                except httpx.TimeoutException:
                    last_error = f"timeout after {self.cfg.timeout_s}s"
                    self.stats.errors += 1
                    continue
                except httpx.TransportError as e:
                    last_error = f"connection error: {type(e).__name__}: {e}"
                    self.stats.errors += 1
                    continue
            status = r.status_code
            if status >= 400:
                self.stats.errors += 1
                last_error = f"HTTP {status}: {r.text[:200]!r}"
                if status in (401, 403, 404):
                    raise JudgeUnavailable(
                        f"judge endpoint {url} refused the request ({last_error}); check the "
                        f"URL, judge.model={self.cfg.model!r} and judge.api_key_env"
                    )
                if status >= 500 or status in (408, 429):
                    continue
                return "", last_error
            try:
                return _answer_text(r.json(), chat), ""
            except (ValueError, KeyError, IndexError, TypeError) as e:
                last_error = f"unreadable body ({type(e).__name__}: {e}): {r.text[:200]!r}"
                self.stats.errors += 1
        raise JudgeUnavailable(
            f"judge endpoint {url} unavailable after {self.cfg.retries + 1} attempts; "
            f"last error: {last_error}"
        )
