"""The scale path's policies: LoRA roles on one frozen base (magic_rl.lora) and vLLM rollouts
(magic_rl.policy.vllm, against a fake engine: vLLM is not installed on CPU machines)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tiny_models import tiny_llama_config

from magic_rl.config import ConfigError, LoraConfig, PolicyConfig, load_config
from magic_rl.lora import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    AdapterModel,
    LoraRole,
    load_lora_policies,
    reference_model,
)
from magic_rl.policy import sequence_logprobs
from magic_rl.records import Role

A, D = Role.ATTACKER, Role.DEFENDER
PROMPTS = [[5, 6, 7, 8], [9, 10, 11]]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with a word-level tokenizer (`t<i>` = id i), saved as safetensors."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_llama")
    torch.manual_seed(0)
    cfg = tiny_llama_config(
        64,
        num_key_value_heads=4,
        max_position_embeddings=128,
        eos_token_id=1,
        bos_token_id=2,
        pad_token_id=0,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(64)}, unk_token="t3"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="t1", pad_token="t0", bos_token="t2", unk_token="t3"
    )
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(out)
    return out


def _pcfg(base_dir: Path, **kw) -> PolicyConfig:
    return PolicyConfig(model=str(base_dir), dtype="float32", lora=LoraConfig(r=4), **kw)


def _pair(base_dir: Path, **adapters: Path) -> dict:
    p = _pcfg(base_dir)
    return load_lora_policies(
        {role: LoraRole(str(base_dir), p, adapters.get(role.value)) for role in (A, D)}, "cpu"
    )


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: t.detach().clone() for n, t in module.named_parameters()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train(policy, target: list[int], steps: int, lr: float = 0.05) -> None:
    """A few steps of the trainer's recipe: AdamW over `requires_grad` params of `policy.model`,
    loss from `sequence_logprobs` (here: make `target` likely after every prompt)."""
    params = [p for p in policy.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    policy.model.train()
    for _ in range(steps):
        logp, mask = sequence_logprobs(
            policy.model, PROMPTS, [target] * len(PROMPTS), policy.pad_id
        )
        (-(logp * mask).sum() / mask.sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def _greedy(policy, n: int = 4) -> list[list[int]]:
    tokens, _, _ = policy.generate_ids(PROMPTS, temperature=0.0, top_p=1.0, max_new_tokens=n)
    return tokens


def _logits(model, ids=(5, 6, 7, 8)) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([list(ids)])).logits


def test_two_adapters_share_one_frozen_base(base_dir):
    pol = _pair(base_dir)
    a, d = pol[A].model, pol[D].model
    assert isinstance(a, AdapterModel) and a.shared is d.shared
    peft_model = a.shared.peft
    assert set(peft_model.peft_config) == {"attacker", "defender"}
    a_ids = {id(p) for p in a.parameters()}
    d_ids = {id(p) for p in d.parameters()}
    base_ids = {id(p) for p in a.shared.base_parameters()}
    # 2 layers x 4 target modules x (A, B)
    assert len(a_ids) == len(d_ids) == 16 and not a_ids & d_ids and not (a_ids | d_ids) & base_ids
    assert all(p.requires_grad for p in a.parameters()) and all(
        p.requires_grad for p in d.parameters()
    )
    assert not any(p.requires_grad for p in a.shared.base_parameters())
    # lora_B starts at zero: both roles start as the base model
    assert _greedy(pol[A]) == _greedy(pol[D])


def test_attacker_update_changes_only_the_attacker_adapter(base_dir):
    pol = _pair(base_dir)
    shared = pol[A].model.shared
    before = _snapshot(shared.peft)
    _greedy(pol[D])  # the defender's forward between the two makes the views switch adapters
    _train(pol[A], [9, 9, 9, 1], steps=2)
    after = _snapshot(shared.peft)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(".attacker." in n for n in changed)
    assert all(n in changed for n in before if ".attacker." in n and "lora_B" in n)


def test_generation_differs_per_adapter_after_an_update(base_dir):
    pol = _pair(base_dir)
    base_greedy = _greedy(pol[D])
    assert 9 not in {t for row in base_greedy for t in row}
    _train(pol[A], [9, 9, 9, 1], steps=20)
    learnt = _greedy(pol[A])
    assert sum(t == 9 for row in learnt for t in row) >= 4  # the attacker moved to its target...
    assert _greedy(pol[D]) == base_greedy  # ...the defender is still the base
    assert _greedy(pol[A]) == learnt  # and switching back and forth holds


def test_frozen_role_stays_frozen_across_adapter_switches(base_dir):
    pol = _pair(base_dir)
    pol[A].model.requires_grad_(False)  # what the loop does to a role that is not trained
    for _ in range(2):
        _greedy(pol[A])
        _train(pol[D], [9, 1], steps=1)
    assert not any(p.requires_grad for p in pol[A].model.parameters())
    assert all(p.requires_grad for p in pol[D].model.parameters())


def test_reference_is_the_base_with_adapters_off(base_dir):
    from transformers import AutoModelForCausalLM

    pol = _pair(base_dir)
    _train(pol[A], [9, 9, 1], steps=5)
    ref = reference_model(pol[A])
    plain = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    assert torch.allclose(_logits(ref), _logits(plain), atol=1e-6)
    assert not torch.allclose(_logits(pol[A].model), _logits(plain), atol=1e-4)
    # the reference pass leaves each role's requires_grad as it was
    assert all(p.requires_grad for p in pol[A].model.parameters())
    assert sum(1 for _ in ref.parameters()) > 0 and not any(
        p.requires_grad for p in ref.parameters()
    )


def test_saved_adapter_loads_with_peft_and_transformers_and_resumes(base_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    pol = _pair(base_dir)
    _train(pol[A], [9, 9, 1], steps=5)
    want = _logits(pol[A].model)
    pol[A].save_pretrained(tmp_path / "attacker")
    files = {p.name for p in (tmp_path / "attacker").iterdir()}
    assert {ADAPTER_CONFIG, ADAPTER_WEIGHTS} <= files and "model.safetensors" not in files
    meta = json.loads((tmp_path / "attacker" / ADAPTER_CONFIG).read_text())
    assert meta["base_model_name_or_path"] == str(base_dir.resolve()) and meta["r"] == 4

    fresh = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    by_peft = PeftModel.from_pretrained(fresh, tmp_path / "attacker")
    assert torch.allclose(_logits(by_peft), want, atol=1e-5)
    by_transformers = AutoModelForCausalLM.from_pretrained(tmp_path / "attacker")
    assert torch.allclose(_logits(by_transformers), want, atol=1e-5)
    # resume: the attacker from its saved adapter, the defender fresh, on one base again
    again = _pair(base_dir, attacker=tmp_path / "attacker")
    assert again[A].model.shared is again[D].model.shared
    assert torch.allclose(_logits(again[A].model), want, atol=1e-6)


def test_roles_on_different_bases_or_a_non_adapter_dir(base_dir, tmp_path):
    other = PolicyConfig(
        model=str(base_dir),
        dtype="float32",
        lora=LoraConfig(r=2),
        trust_remote_code=False,
        device="cpu",
    )
    p = _pcfg(base_dir)
    pol = load_lora_policies(
        {
            A: LoraRole(str(base_dir), p),
            D: LoraRole(str(base_dir), other.model_copy(update={"dtype": "bfloat16"})),
        },
        "cpu",
    )
    assert pol[A].model.shared is not pol[D].model.shared  # another dtype: another base copy
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter directory"):
        load_lora_policies({A: LoraRole(str(base_dir), p, base_dir)}, "cpu")


# --- sandbox runs ------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_sandbox_run_with_two_lora_roles_on_one_base_with_kl_and_resume(tiny_overrides, tmp_path):
    from sandbox_train import train

    from magic_rl.loop import Run
    from magic_rl.sandbox.resolve import resolve_world

    common = [
        *tiny_overrides,
        "attacker.model=sandbox:base",
        "attacker.lora.r=4",
        "defender.lora.r=4",
        "grpo.kl_beta=0.05",
        "reward.truncation=penalize",
        "schedule.freq=1",
        "train.seeds_per_step=4",
        f"output_dir={tmp_path}",
        "name=lora",
    ]
    cfg = load_config("sandbox", [*common, "train.steps=2"])
    assert cfg.attacker.lora == LoraConfig(r=4)
    run_dir = train(cfg, log=lambda *a: None)
    rows = _rows(run_dir / "metrics.jsonl")
    assert [r["schedule/role"] for r in rows] == ["defender", "attacker"]
    # the KL term ran against the base (adapters off); at step 0 the adapters are still ~zero
    assert rows[0]["defender/update/kl"] == pytest.approx(0.0, abs=1e-6)
    assert rows[1]["attacker/update/kl"] >= 0.0
    for step in ("step-000000", "step-000002"):
        for role in ("attacker", "defender"):
            assert (run_dir / "checkpoints" / step / role / ADAPTER_WEIGHTS).exists()
    state = run_dir / "state"
    assert (state / "attacker" / ADAPTER_CONFIG).exists()

    cfg3 = load_config("sandbox", [*common, "train.steps=3"])
    run = Run(resolve_world(cfg3, log=lambda *a: None), run_dir, log=lambda *a: None)
    assert run.policies[A].model.shared is run.policies[D].model.shared
    train(cfg3, resume=run_dir, log=lambda *a: None)
    assert [r["step"] for r in _rows(run_dir / "metrics.jsonl")] == [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "attacker_file"),
    [
        # the sandbox's SFT'd attacker and its base defender: two bases, one adapter each
        (["attacker.lora={r: 4}", "defender.lora={r: 4}"], ADAPTER_WEIGHTS),
        (["defender.lora={r: 4}"], "model.safetensors"),  # one LoRA role, one full
    ],
)
def test_sandbox_run_with_lora_roles_on_their_own_bases(
    tiny_overrides, tmp_path, overrides, attacker_file
):
    from sandbox_train import train

    cfg = load_config(
        "sandbox",
        [
            *tiny_overrides,
            *overrides,
            "train.steps=2",
            "train.seeds_per_step=4",
            "reward.truncation=penalize",
            "schedule.freq=1",
            f"output_dir={tmp_path}",
            "name=own",
        ],
    )
    run_dir = train(cfg, log=lambda *a: None)
    final = run_dir / "checkpoints" / "step-000002"
    assert (final / "defender" / ADAPTER_WEIGHTS).exists()
    assert (final / "attacker" / attacker_file).exists()
    assert len(_rows(run_dir / "metrics.jsonl")) == 2


# --- vLLM rollouts (fake engine) ---------------------------------------------------------------


class FakeSamplingParams:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class FakeEngineModel:
    def __init__(self):
        self.loads: list[list[str]] = []

    def load_weights(self, weights):
        self.loads.append([name for name, _ in weights])


class FakeLLM:
    """Answers each prompt with `script(prompt_ids, params) -> (ids, finish, stop_reason)`."""

    def __init__(self, script, in_process: bool = True):
        self.script, self.calls, self.resets = script, [], 0
        self.model = FakeEngineModel()
        self.applied: list = []
        if in_process:
            runner = SimpleNamespace(model=self.model)
            self.llm_engine = SimpleNamespace(
                model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner))
            )

    def apply_model(self, fn):
        self.applied.append(fn)
        return [fn(self.model)]

    def reset_prefix_cache(self):
        self.resets += 1

    def generate(self, prompts, params, use_tqdm=False):
        self.calls.append((prompts, params))
        outs = []
        for prompt, p in zip(prompts, params, strict=True):
            ids, finish, stop = self.script(prompt["prompt_token_ids"], p)
            lps = [{t: SimpleNamespace(logprob=-0.5)} for t in ids]
            out = SimpleNamespace(
                token_ids=ids,
                text=" ".join(f"t{t}" for t in ids if t != 1),
                finish_reason=finish,
                stop_reason=stop,
                logprobs=lps,
            )
            outs.append(SimpleNamespace(outputs=[out]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=FakeSamplingParams))


def _vllm_policy(base_dir, script, in_process=True):
    from magic_rl.policy import HFPolicy
    from magic_rl.policy.vllm import VLLMPolicy

    hf = HFPolicy.from_pretrained(base_dir)
    return VLLMPolicy(FakeLLM(script, in_process=in_process), hf, max_model_len=64)


CHATS = [[{"role": "user", "content": "t5 t6 t7"}], [{"role": "user", "content": "t8"}]]


@pytest.mark.parametrize(
    ("ids", "finish", "stop", "want_ids", "want_finish"),
    [
        ([9, 10, 1], "stop", None, (9, 10, 1), "stop"),  # EOS kept, as HFPolicy does
        ([9, 10], "stop", 1, (9, 10, 1), "stop"),  # EOS dropped by the engine: restored
        ([9, 10, 11], "length", None, (9, 10, 11), "length"),
    ],
)
def test_vllm_generate_contract(base_dir, fake_vllm, ids, finish, stop, want_ids, want_finish):
    policy = _vllm_policy(base_dir, lambda prompt, p: (ids, finish, stop))
    gens = policy.generate(
        CHATS, temperature=0.7, top_p=0.9, max_new_tokens=3, seed=11, max_prompt_tokens=2
    )
    assert [g.prompt_ids for g in gens] == [(6, 7), (8,)]  # left-truncated like HFPolicy
    assert all(g.completion_ids == want_ids and g.finish == want_finish for g in gens)
    assert gens[0].text == "t9 t10" + (" t11" if finish == "length" else "")
    assert len(gens[0].logprobs) == len(want_ids) and gens[0].logprobs[0] == -0.5
    ((prompts, params),) = policy.llm.calls
    assert prompts == [{"prompt_token_ids": [6, 7]}, {"prompt_token_ids": [8]}]
    assert [(p.temperature, p.top_p, p.max_tokens, p.seed) for p in params] == [
        (0.7, 0.9, 3, 11),
        (0.7, 0.9, 3, 12),
    ]  # one seed per row: a group's copies differ


def test_vllm_budget_is_capped_by_the_engine_length(base_dir, fake_vllm):
    policy = _vllm_policy(base_dir, lambda prompt, p: ([9], "length", None))
    policy.max_model_len = 5
    policy.generate(CHATS, temperature=0.0, top_p=1.0, max_new_tokens=10)
    assert [p.max_tokens for p in policy.llm.calls[0][1]] == [2, 4]
    policy.max_model_len = 3
    with pytest.raises(ValueError, match="max_model_len=3"):
        policy.generate(CHATS, temperature=0.0, top_p=1.0, max_new_tokens=10)


@pytest.mark.parametrize("in_process", [True, False])
def test_vllm_weights_are_pushed_after_an_update_only(base_dir, fake_vllm, in_process):
    policy = _vllm_policy(base_dir, lambda prompt, p: ([9, 1], "stop", None), in_process=in_process)
    policy.generate(CHATS, temperature=1.0, top_p=1.0, max_new_tokens=2)
    assert policy.syncs == 0  # the engine started from the same files
    opt = torch.optim.SGD(policy.model.parameters(), lr=0.1)
    logp, mask = sequence_logprobs(policy.model, [[5, 6]], [[9, 1]], policy.pad_id)
    (-(logp * mask).sum()).backward()
    opt.step()
    policy.generate(CHATS, temperature=1.0, top_p=1.0, max_new_tokens=2)
    policy.generate(CHATS, temperature=1.0, top_p=1.0, max_new_tokens=2)
    assert policy.syncs == 1 and policy.llm.resets == 1
    (names,) = policy.llm.model.loads
    assert set(names) == set(policy.model.state_dict())
    assert bool(policy.llm.applied) is not in_process


def test_vllm_backend_config_and_wiring(base_dir, monkeypatch):
    with pytest.raises(ConfigError, match="backend=vllm with lora"):
        load_config(None, ["defender.backend=vllm", "defender.lora.r=4"])
    cfg = load_config(
        None,
        [
            "defender.backend=vllm",
            "defender.gpu_memory_utilization=0.3",
            "defender.dtype=float32",
            "defender.sampling.max_new_tokens=16",
            "defender.sampling.max_prompt_tokens=32",
        ],
    )
    seen = {}

    class LLM(FakeLLM):
        def __init__(self, **kw):
            seen.update(kw)
            super().__init__(lambda prompt, p: ([1], "stop", None))

    monkeypatch.setitem(
        sys.modules, "vllm", SimpleNamespace(LLM=LLM, SamplingParams=FakeSamplingParams)
    )
    from magic_rl.policy.load import load_policy
    from magic_rl.policy.vllm import VLLMPolicy

    policy = load_policy(base_dir, cfg.defender, "cpu", rollouts=True)
    assert isinstance(policy, VLLMPolicy) and policy.max_model_len == 48
    assert seen["model"] == str(base_dir) and seen["gpu_memory_utilization"] == 0.3
    assert seen["trust_remote_code"] is False and seen["dtype"] == "float32"
    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed
    with pytest.raises(ImportError, match=r"magic-rl\[gpu\]"):
        load_policy(base_dir, cfg.defender, "cpu", rollouts=True)
