"""`magic serve policy`: a tiny HF causal LM behind the OpenAI API, spoken to by the `openai`
client library (the compatibility check), with batching, seeds, n, stop and the shared limits."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import torch
from tiny_models import tiny_llama_config
from transformers import AutoTokenizer, LlamaForCausalLM

from magic_rl.policy import HFPolicy, ScriptedPolicy
from magic_rl.sandbox.tokenizer import train_tokenizer
from magic_rl.serving.policy import PolicyServer

WORDS = [
    "the",
    "a",
    "fox",
    "dog",
    "user",
    "please",
    "explain",
    "how",
    "why",
    "write",
    "story",
    "help",
    "answer",
    "think",
    "step",
    "one",
    "two",
]
CHAT = [{"role": "user", "content": "please explain the fox"}]


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> HFPolicy:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tok")
    lines = [
        " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 7)) for i in range(300)
    ]
    train_tokenizer(lines, 300, out)
    tok = AutoTokenizer.from_pretrained(out, padding_side="left")
    torch.manual_seed(0)
    config = tiny_llama_config(
        len(tok), max_position_embeddings=128, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # sharp logits: no greedy ties
    return HFPolicy(model, tok)


@pytest.fixture(scope="module")
def served(policy):
    server = PolicyServer(policy, "tiny").start()
    yield server, openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
    server.shutdown()
    server.server_close()


def test_the_openai_client_lists_chats_and_completes(served) -> None:
    server, client = served
    assert [m.id for m in client.models.list()] == ["tiny"]
    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=6, temperature=0)
    choice = chat.choices[0]
    assert chat.object == "chat.completion" and choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.finish_reason in ("stop", "length")
    assert 0 < chat.usage.completion_tokens <= 6 and chat.usage.prompt_tokens > 0
    text = client.completions.create(model="tiny", prompt="the fox", max_tokens=5, temperature=0)
    assert text.object == "text_completion" and isinstance(text.choices[0].text, str)
    assert text.usage.completion_tokens <= 5


def test_chat_uses_the_models_chat_template(served, policy) -> None:
    server, client = served
    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=4, temperature=0)
    assert chat.usage.prompt_tokens == len(policy.encode_chat(CHAT))
    (direct,) = policy.generate([CHAT], temperature=0.0, top_p=1.0, max_new_tokens=4)
    assert chat.choices[0].message.content == direct.text


def test_seed_and_n_are_honoured(served) -> None:
    _, client = served

    def sample(seed: int) -> list[str]:
        r = client.chat.completions.create(
            model="tiny", messages=CHAT, max_tokens=8, temperature=1.0, n=3, seed=seed
        )
        return [c.message.content for c in r.choices]

    a = sample(7)
    assert len(a) == 3 and a == sample(7) and a != sample(8)


def test_concurrent_greedy_requests_are_batched_and_match_single_runs(served) -> None:
    server, client = served
    prompts = [" ".join(WORDS[i : i + 3 + i % 4]) for i in range(8)]

    def one(p: str) -> str:
        msg = [{"role": "user", "content": p}]
        r = client.chat.completions.create(
            model="tiny", messages=msg, max_tokens=6, temperature=0, seed=len(p)
        )  # seeded requests batch too (a rewriter sends a seed with every request)
        return r.choices[0].message.content

    before = len(server.batcher.batch_sizes)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(one, prompts))
    assert max(server.batcher.batch_sizes[before:]) > 1
    assert together == [one(p) for p in prompts]


def test_stop_strings_and_max_tokens(served) -> None:
    _, client = served
    full = client.completions.create(model="tiny", prompt="the", max_tokens=12, temperature=0)
    text = full.choices[0].text
    assert full.choices[0].finish_reason == "length" and len(text) > 2
    cut = client.completions.create(
        model="tiny", prompt="the", max_tokens=12, temperature=0, stop=[text[1:3]]
    )
    assert cut.choices[0].text == text[: text.index(text[1:3])]
    assert cut.choices[0].finish_reason == "stop"


def test_errors_come_back_as_the_clients_exceptions(served) -> None:
    _, client = served
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="other", messages=CHAT, max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="tiny", messages=CHAT, temperature=5)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=100_000)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model="tiny", prompt="the fox " * 200, max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="stream"):
        client.chat.completions.create(model="tiny", messages=CHAT, stream=True)


def test_api_key_and_size_cap() -> None:
    from magic_rl.serving import Limits

    server = PolicyServer(
        ScriptedPolicy(lambda chat: "ok"), "s", api_key="k", limits=Limits(max_body_bytes=1000)
    ).start()
    try:
        good = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)
        bad = openai.OpenAI(base_url=server.url, api_key="nope", max_retries=0)
        assert (
            good.chat.completions.create(model="s", messages=CHAT).choices[0].message.content
            == "ok"
        )
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="s", messages=CHAT)
        big = [{"role": "user", "content": "x" * 2000}]
        with pytest.raises(openai.APIStatusError) as err:
            good.chat.completions.create(model="s", messages=big)
        assert err.value.status_code == 413
        with pytest.raises(
            openai.BadRequestError, match="chat"
        ):  # a scripted policy has no tokenizer
            good.completions.create(model="s", prompt="x")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_magic_serve_policy_command_serves_a_saved_model(policy, tmp_path, cli_server) -> None:
    policy.save_pretrained(tmp_path / "model")
    url = cli_server(
        ["serve", "policy", "--model", str(tmp_path / "model"), "--port", "0", "--model-name", "tiny",
         "--device", "cpu"],
        "base_url",
    )  # fmt: skip
    assert url.startswith("http://127.0.0.1:")
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
    r = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=3, temperature=0)
    assert r.choices[0].message.content is not None
    assert httpx.get(url.removesuffix("/v1") + "/health", timeout=5).status_code == 200


def test_a_queued_request_whose_client_left_never_reaches_the_model() -> None:
    gate, seen = threading.Event(), []

    def fn(chat) -> str:
        seen.append(chat[-1]["content"])
        gate.wait(10)  # the first request holds the model thread
        return "ok"

    server = PolicyServer(ScriptedPolicy(fn), "s", max_batch=1).start()
    url = f"{server.url}/chat/completions"
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                httpx.post,
                url,
                json={"messages": [{"role": "user", "content": "first"}]},
                timeout=20,
            )
            while not seen:
                time.sleep(0.01)
            with pytest.raises(httpx.TimeoutException):  # queued behind "first"; the client leaves
                httpx.post(
                    url, json={"messages": [{"role": "user", "content": "left"}]}, timeout=0.3
                )
            time.sleep(1.5)  # the server polls for disconnects every second
            gate.set()
            assert first.result().status_code == 200
        after = httpx.post(
            url, json={"messages": [{"role": "user", "content": "after"}]}, timeout=20
        )
        assert after.status_code == 200
        assert seen == ["first", "after"]  # "left" was dropped before it reached the model
    finally:
        gate.set()
        server.shutdown()
        server.server_close()
