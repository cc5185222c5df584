"""Rollouts with vLLM: `VLLMPolicy`, the `Policy` protocol over a `vllm.LLM` engine.

The trained weights stay in a Hugging Face model (`.model`: the GRPO trainer scores and updates it
exactly as with `HFPolicy`); a vLLM engine next to it samples the rollouts. After an optimiser step
the engine holds stale weights, so `generate` first pushes the HF weights into it whenever they
changed since the last push (`sync_weights`). "Changed" is read from the version counters PyTorch
keeps on every tensor (bumped by each in-place update such as `optimizer.step()`), so the training
loop needs no extra call; `sync_weights(model)` can also be called directly.

vLLM API used (looked up against vLLM 0.8-0.11 sources; vLLM moves fast, pin the version you test):
- `vllm.LLM(model=..., dtype=..., gpu_memory_utilization=..., max_model_len=..., seed=...,
  trust_remote_code=..., enable_prefix_caching=True)`;
- `LLM.generate([{"prompt_token_ids": ids}, ...], [SamplingParams(...)] , use_tqdm=False)` with one
  `SamplingParams(temperature, top_p, max_tokens, seed, logprobs=0)` per prompt. Each row gets
  `seed + i`, so the G copies of a prompt in a GRPO group draw different samples, reproducibly;
- weight push, first path that exists:
  1. in-process engine (vLLM V0, or V1 with `VLLM_ENABLE_V1_MULTIPROCESSING=0`, which we recommend:
     no copy through another process): `llm.llm_engine.model_executor.driver_worker
     [.worker].model_runner.model.load_weights(weights)`;
  2. otherwise the public `LLM.apply_model(fn)` (runs `fn(model)` in every worker; with V1
     multiprocessing the weights are pickled across, needs `VLLM_ALLOW_INSECURE_SERIALIZATION=1`);
  then `llm.reset_prefix_cache()`, since cached KV blocks were computed with the old weights.
  Tensor parallelism > 1 is not supported by this push (each worker would need its shard).

Departures from `HFPolicy`: `Generation.logprobs` are vLLM's (by default from the raw model
distribution, before temperature and top-p), a diagnostic like HFPolicy's; the trainer recomputes its
own under the HF model, so a small numeric mismatch between the engines shows up as a ratio != 1 on
the first PPO epoch, not as a wrong gradient. LoRA roles are not supported (config refuses
`backend=vllm` with `lora`).

Only tested on CPU against a fake engine (`tests/test_lora.py::test_vllm_*`); the `gpu` extra installs
vLLM. Run: `magic train --config configs/paper-qwen2.5-7b.yaml defender.backend=vllm`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magic_rl.policy import Chat, Generation, HFPolicy, encode_prompts

if TYPE_CHECKING:
    import torch

    from magic_rl.config import PolicyConfig

# Engine attribute paths to the model's nn.Module, newest layout last.
_MODEL_PATHS = (
    "llm_engine.model_executor.driver_worker.model_runner.model",  # V0
    "llm_engine.model_executor.driver_worker.worker.model_runner.model",  # V1, in-process
    "llm_engine.engine_core.engine_core.model_executor.driver_worker.worker.model_runner.model",
)


def _follow(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def engine_model(llm: Any) -> Any:
    """The engine's in-process model (with `load_weights`), or None when it lives elsewhere."""
    for path in _MODEL_PATHS:
        model = _follow(llm, path)
        if model is not None and hasattr(model, "load_weights"):
            return model
    return None


def weights_version(model: torch.nn.Module) -> int:
    """Sum of the parameters' in-place version counters: changes whenever any weight is updated."""
    return sum(p._version for p in model.parameters())


class VLLMPolicy:
    """`Policy` over a vLLM engine; `.model` is the HF copy the trainer updates."""

    def __init__(self, llm: Any, hf: HFPolicy, *, max_model_len: int | None = None) -> None:
        self.llm = llm
        self.hf = hf
        self.model = hf.model
        self.tokenizer = hf.tokenizer
        self.pad_id = hf.pad_id
        self.eos_ids = hf.eos_ids
        self.max_model_len = max_model_len
        self._synced = weights_version(self.model)  # the engine loaded the same files
        self.syncs = 0

    @classmethod
    def from_hf(cls, hf: HFPolicy, path: str | Path, pcfg: PolicyConfig, device: str) -> VLLMPolicy:
        """Start an engine on the weights at `path` (the same files `hf` was loaded from)."""
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                "backend=vllm needs vLLM: pip install 'magic-rl[gpu]' (a CUDA machine)"
            ) from err
        s = pcfg.sampling
        max_len = s.max_prompt_tokens + s.max_new_tokens
        kw: dict[str, Any] = {}
        if device.startswith("cuda:"):
            kw["device"] = device  # older vLLM; newer ones follow CUDA_VISIBLE_DEVICES
        llm = vllm.LLM(
            model=str(path),
            tokenizer=str(path),
            dtype=pcfg.dtype,
            gpu_memory_utilization=pcfg.gpu_memory_utilization,
            max_model_len=max_len,
            trust_remote_code=pcfg.trust_remote_code,
            enable_prefix_caching=True,
            **kw,
        )
        return cls(llm, hf, max_model_len=max_len)

    @property
    def device(self) -> Any:
        return self.hf.device

    def encode_chat(self, messages: Chat) -> list[int]:
        return self.hf.encode_chat(messages)

    def save_pretrained(self, path: str | Path) -> None:
        self.hf.save_pretrained(path)

    # -- weights -----------------------------------------------------------------------------------

    def sync_weights(self, model: torch.nn.Module | None = None) -> None:
        """Push `model`'s weights (default: `self.model`) into the engine."""
        model = model if model is not None else self.model
        if hasattr(model, "module"):  # DDP / accelerate wrapper
            model = model.module
        weights = [(name, t.detach()) for name, t in model.state_dict().items()]
        target = engine_model(self.llm)
        if target is not None:
            target.load_weights(weights)
        elif hasattr(self.llm, "apply_model"):
            self.llm.apply_model(_Loader(weights))
        else:
            raise RuntimeError(
                "VLLMPolicy.sync_weights: this vLLM exposes neither an in-process model "
                f"({', '.join(_MODEL_PATHS)}) nor LLM.apply_model; pin a supported version"
            )
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()
        self._synced = weights_version(self.model)
        self.syncs += 1

    def _sync_if_stale(self) -> None:
        if weights_version(self.model) != self._synced:
            self.sync_weights()

    # -- sampling ----------------------------------------------------------------------------------

    def generate(
        self,
        chats: Sequence[Chat],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        max_prompt_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        prompts = encode_prompts(
            self,
            chats,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=max_prompt_tokens,
        )
        if not prompts:
            return []
        self._sync_if_stale()
        from vllm import SamplingParams

        params = []
        for i, p in enumerate(prompts):
            budget = max_new_tokens
            if self.max_model_len is not None:
                if len(p) >= self.max_model_len:
                    raise ValueError(
                        f"generate: a prompt of {len(p)} tokens fills the engine's "
                        f"max_model_len={self.max_model_len}; lower max_prompt_tokens"
                    )
                budget = min(budget, self.max_model_len - len(p))
            params.append(
                SamplingParams(
                    temperature=temperature,
                    top_p=top_p,
                    max_tokens=budget,
                    seed=None if seed is None else seed + i,
                    logprobs=0,
                )
            )
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False
        )
        return [self._generation(p, out) for p, out in zip(prompts, outputs, strict=True)]

    def _generation(self, prompt: Sequence[int], request_output: Any) -> Generation:
        out = request_output.outputs[0]
        ids = list(out.token_ids)
        finish = "stop" if out.finish_reason == "stop" else "length"
        lps = _sampled_logprobs(ids, out.logprobs)
        if finish == "stop" and (not ids or ids[-1] not in self.eos_ids):
            # Same contract as HFPolicy: a stopped completion ends with its EOS (the trainer must
            # learn to stop); vLLM drops it when a stop token is not an EOS of its own config.
            stop = out.stop_reason if isinstance(out.stop_reason, int) else self.eos_ids[0]
            ids.append(stop)
            lps.append(0.0)
        text = out.text
        if text is None:
            body = ids[:-1] if finish == "stop" else ids
            text = self.tokenizer.decode(body, skip_special_tokens=True)
        return Generation(text, tuple(prompt), tuple(ids), finish, tuple(lps))


def _sampled_logprobs(ids: Sequence[int], logprobs: Any) -> list[float]:
    """vLLM gives one {token_id: Logprob} dict per position; keep the sampled token's."""
    if not logprobs:
        return [0.0] * len(ids)
    out = []
    for tok, entry in zip(ids, logprobs, strict=False):
        lp = entry.get(tok) if entry else None
        out.append(float(getattr(lp, "logprob", lp)) if lp is not None else 0.0)
    return out + [0.0] * (len(ids) - len(out))


class _Loader:
    """Picklable `fn(model)` for `LLM.apply_model`: load the given weights into the worker's model."""

    def __init__(self, weights: Iterable[tuple[str, Any]]) -> None:
        self.weights = [(n, t.to("cpu")) for n, t in weights]

    def __call__(self, model: Any) -> None:
        model.load_weights(self.weights)
