"""One way to load a model: `load_policy(path, pcfg, device)`, for training, evaluation and serving.

Every caller (the training run's roles, KL references and past opponents, `magic eval|attack|
crossplay`, live cross-play, `magic serve policy`) goes through the same checks, in this order:

1. A local path must exist (`hf.check_model_path`; `org/name` stays a Hub id).
2. A local directory whose weights are only pickle files (`pytorch_model.bin`, `*.pt`) is refused
   (`require_safetensors`): a pickle can run code when it is loaded.
3. A local directory must be whole (`data.model_files.model_dir_problem`): a 0-byte config.json or a
   truncated safetensors file (a kill while a checkpoint was written) is named, not loaded.

One device rule: the role's own `pcfg.device` when set, else `device` (the run's; `auto` -> cuda when
available, else cpu). `rollouts=True` (the training run's players) wraps the model in a vLLM engine
when `pcfg.backend == "vllm"` (`policy.vllm`); everything else decodes with `HFPolicy`. LoRA roles
load through `magic_rl.lora.load_lora_policies` (the training run checks their base with
`require_safetensors` first).

Run: `python -m pytest -q tests/test_security.py tests/test_policy_load.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magic_rl.data.model_files import model_dir_problem, pickle_problem
from magic_rl.policy.hf import HFPolicy, check_model_path, resolve_device

if TYPE_CHECKING:
    from magic_rl.config import PolicyConfig
    from magic_rl.policy.base import Policy


def load_policy(
    path: str | Path,
    pcfg: PolicyConfig,
    device: str = "auto",
    *,
    rollouts: bool = False,
    what: str = "model",
) -> Policy:
    """The model at `path` (a directory or Hub id) with `pcfg`'s dtype and remote-code setting,
    on `pcfg.device` or else `device`. `what` names the model in errors (e.g. "defender model")."""
    check_model_path(path)
    if Path(path).is_dir():
        require_safetensors(path)
        if problem := model_dir_problem(path):
            raise FileNotFoundError(f"{what}: {problem}")
    device = pcfg.device or resolve_device(device)
    policy = HFPolicy.from_pretrained(
        path, dtype=pcfg.dtype, device=device, trust_remote_code=pcfg.trust_remote_code
    )
    if rollouts and pcfg.backend == "vllm":
        from magic_rl.policy.vllm import VLLMPolicy

        return VLLMPolicy.from_hf(policy, path, pcfg, device)
    return policy


def require_safetensors(path: str | Path) -> None:
    """A local model directory must hold safetensors weights: pickle files (`pytorch_model.bin`,
    `*.pt`) can run code when loaded, so they are refused with a message that says how to convert
    (`data.model_files.pickle_problem`, which every model-directory check shares)."""
    if problem := pickle_problem(path):
        raise OSError(problem)
