"""The paper's LLM-judge classification (real runs): its F.4 prompt, the chat messages, the
answer parser, and `LLMTagger` over an OpenAI-compatible `/chat/completions` URL."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from magic_rl.evaluate.analyze.taxonomy import TAXONOMY, UNKNOWN, code_of

PROMPT_PATH = (
    Path(__file__).resolve().parents[2] / "assets" / "report" / "classification_prompt.txt"
)


def load_classification_prompt(path: str | Path = PROMPT_PATH) -> dict[str, str]:
    """The paper's F.4 prompt as {"system", "standards", "user"} from its `=== name ===` sections."""
    path = Path(path)
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.fullmatch(r"=== (\w+) ===", line.strip())
        if m:
            current = sections.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"{path}:{lineno}: text before the first '=== section ===' line")
    missing = {"system", "standards", "user"} - set(sections)
    if missing:
        raise ValueError(f"{path}: missing section(s) {sorted(missing)}")
    return {name: "\n".join(lines).strip() for name, lines in sections.items()}


def classification_messages(
    text: str, seed: str, prompt: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """Chat messages of the paper's classifier for one rewrite of `seed`."""
    p = prompt or load_classification_prompt()
    user = (
        p["user"]
        .replace("{CLASSIFICATION_STANDARDS}", "\n" + p["standards"] + "\n")
        .replace("{question}", seed)
        .replace("{attacker_answer}", text)
    )
    return [{"role": "system", "content": p["system"]}, {"role": "user", "content": user}]


def parse_classification(answer: str) -> str:
    """The code of a classifier answer: its <answer> JSON's `combined_strategy_code`, else
    `primary_strategy`, else `all_strategies`; "unknown" when none parses to classes 0-19."""
    m = re.search(r"<answer>(.*?)(?:</answer>|$)", answer, re.DOTALL)
    body = (m.group(1) if m else answer).strip()
    j = re.search(r"\{.*\}", body, re.DOTALL)
    if not j:
        return UNKNOWN
    try:
        obj = json.loads(j.group(0))
    except json.JSONDecodeError:
        return UNKNOWN
    if not isinstance(obj, dict):
        return UNKNOWN
    for key in ("combined_strategy_code", "primary_strategy", "all_strategies"):
        value = obj.get(key)
        try:
            if isinstance(value, list):
                ids = [int(v) for v in value]
            elif isinstance(value, bool) or value is None:
                continue
            else:
                ids = [int(p) for p in str(value).strip().split("_")]
        except (TypeError, ValueError):
            continue
        if ids and all(i in TAXONOMY for i in ids):
            return code_of(ids)
    return UNKNOWN


class LLMTagger:
    """The paper's classifier: an LLM behind an OpenAI-compatible `/chat/completions` URL.

    Greedy, one request per rewrite, `concurrency` in flight. A transport error or HTTP error is
    retried `retries` times, then raises RuntimeError naming the URL; an answer that does not
    parse gives "unknown" and is counted in `self.unknown` (never silently "19").
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        *,
        max_tokens: int = 1024,
        timeout_s: float = 120.0,
        retries: int = 2,
        concurrency: int = 8,
        prompt_path: str | Path = PROMPT_PATH,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.retries = retries
        self.concurrency = concurrency
        self.prompt = load_classification_prompt(prompt_path)
        self._headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"LLMTagger: environment variable {api_key_env!r} is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self.calls = 0
        self.unknown = 0

    def __repr__(self) -> str:
        return f"LLMTagger(url={self.url!r}, model={self.model!r})"

    def __call__(self, texts: Sequence[str], seeds: Sequence[str]) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        if len(texts) != len(seeds):
            raise ValueError(f"LLMTagger: {len(texts)} texts but {len(seeds)} seeds")
        with (
            httpx.Client(timeout=self.timeout_s, headers=self._headers) as client,
            ThreadPoolExecutor(max_workers=self.concurrency) as pool,
        ):
            pairs = zip(texts, seeds, strict=True)
            answers = list(pool.map(lambda ts: self._ask(client, *ts), pairs))
        codes = [parse_classification(a) for a in answers]
        self.calls += len(codes)
        self.unknown += sum(c == UNKNOWN for c in codes)
        return codes

    def _ask(self, client, text: str, seed: str) -> str:
        import httpx

        payload = {
            "model": self.model,
            "messages": classification_messages(text, seed, self.prompt),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        error = ""
        for _ in range(self.retries + 1):
            try:
                response = client.post(self.url, json=payload)
                response.raise_for_status()
                content = response.json()["choices"][0]["message"]["content"]
                return content if isinstance(content, str) else ""
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as e:
                error = f"{type(e).__name__}: {e}"
        raise RuntimeError(f"LLMTagger: {self.url} failed after {self.retries + 1} tries ({error})")
