"""LoRA roles: one frozen base model, one peft adapter per role ("attacker", "defender"), one process.

When both roles set `lora` and resolve to the same base (same path, dtype, device), the base is loaded
once and carries two named adapters; each role gets an ordinary `HFPolicy` whose `.model` is an
`AdapterModel`, a small `nn.Module` view that

- activates its own adapter before every forward, so `generate` and the trainer's
  `sequence_logprobs` both run through the right adapter;
- registers only its own adapter's parameters, so `parameters()` (what `GRPOTrainer` hands to AdamW,
  what gets clipped, what `requires_grad_(False)` freezes) is that adapter alone: the base and the
  other role's adapter are never touched by this role's optimiser;
- saves its adapter in peft's format (`adapter_config.json` + `adapter_model.safetensors`), loadable
  with `PeftModel.from_pretrained(base, dir)` or `AutoModelForCausalLM.from_pretrained(dir)` (peft
  installed), and loads back from such a directory on resume.

With `grpo.kl_beta > 0` the reference policy is `BaseModel`, the same base with every adapter
disabled (no second copy of the weights). A single LoRA role (the other one fully fine-tuned), or two
LoRA roles on different bases (the sandbox's SFT'd attacker and its base defender), each get a base
of their own with one adapter.

Why a view and not peft's own switching alone: `PeftModel.set_adapter` and `disable_adapter` also
flip `requires_grad` of the adapters they touch; the view remembers what each role asked for and puts
it back, and it switches only when the active adapter actually changes (once per role change, not per
token).

Departure from the paper: the reference trains full weights of two 7B models on 4 GPUs per role;
adapters are an option (docs/DESIGN.md §1), off by default.

Run: `python -m pytest -q tests/test_lora.py`; memory and speed: `python benchmarks/lora.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from magic_rl.config import LoraConfig, PolicyConfig
from magic_rl.data.outputs import writing
from magic_rl.policy import HFPolicy, quiet_transformers
from magic_rl.records import Role

if TYPE_CHECKING:
    from peft import PeftModel

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def is_adapter_dir(path: str | Path) -> bool:
    """A directory holding a peft adapter (what a LoRA role saves)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def peft_config(cfg: LoraConfig) -> Any:
    """Our `LoraConfig` section -> peft's `LoraConfig` for a causal LM."""
    import peft

    return peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )


class SharedBase:
    """A peft model over one frozen base, and which of its adapters is active."""

    def __init__(self, peft_model: PeftModel) -> None:
        self.peft = peft_model
        self.active: str | None = None

    def adapter_parameters(self, name: str) -> list[torch.nn.Parameter]:
        """The trainable tensors of adapter `name` (peft names them `...lora_A.<name>.weight`)."""
        params = [
            p for n, p in self.peft.named_parameters() if "lora_" in n and f".{name}." in f"{n}."
        ]
        if not params:
            raise ValueError(f"no LoRA parameters for adapter {name!r}: check lora.target_modules")
        return params

    def base_parameters(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.peft.named_parameters() if "lora_" not in n]

    @contextmanager
    def _keep_requires_grad(self) -> Iterator[None]:
        # peft's set_adapter / disable_adapter set requires_grad on the adapters they touch; the
        # roles' own choices (a frozen role stays frozen) win.
        params = [p for n, p in self.peft.named_parameters() if "lora_" in n]
        flags = [p.requires_grad for p in params]
        try:
            yield
        finally:
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)

    def activate(self, name: str) -> None:
        if self.active != name:
            with self._keep_requires_grad():
                self.peft.set_adapter(name)
            self.active = name

    @contextmanager
    def disabled(self) -> Iterator[None]:
        with self._keep_requires_grad(), self.peft.disable_adapter():
            yield


class AdapterModel(torch.nn.Module):
    """One role's view of a `SharedBase`: its adapter's parameters, forward through its adapter.

    The shared peft model is held outside the module tree on purpose: `parameters()`, `state_dict()`
    and `.to()` see only this adapter (a `ParameterList` of the very tensors peft uses).
    """

    def __init__(self, shared: SharedBase, name: str) -> None:
        super().__init__()
        self.__dict__["shared"] = shared  # not a submodule: see the class docstring
        self.adapter_name = name
        self.adapter = torch.nn.ParameterList(shared.adapter_parameters(name))
        self.training = shared.peft.training

    @property
    def config(self) -> Any:
        return self.get_base_model().config

    @property
    def generation_config(self) -> Any:
        return getattr(self.get_base_model(), "generation_config", None)

    def get_base_model(self) -> torch.nn.Module:
        """The transformers model (adapters injected): `policy._cache_kwarg` reads its signature."""
        return self.shared.peft.get_base_model()

    def train(self, mode: bool = True) -> AdapterModel:
        self.training = mode
        self.shared.peft.train(mode)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.shared.activate(self.adapter_name)
        return self.get_base_model()(*args, **kwargs)

    def save_pretrained(self, path: str | Path, **_: Any) -> None:
        """This adapter only, in peft's format (safetensors)."""
        from peft.utils import get_peft_model_state_dict
        from safetensors.torch import save_file

        path = Path(path)
        state = get_peft_model_state_dict(self.shared.peft, adapter_name=self.adapter_name)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        with writing(path / ADAPTER_WEIGHTS):
            path.mkdir(parents=True, exist_ok=True)
            save_file(tensors, str(path / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        cfg = self.shared.peft.peft_config[self.adapter_name]
        was, cfg.inference_mode = cfg.inference_mode, True  # what peft itself writes
        try:
            cfg.save_pretrained(str(path))
        finally:
            cfg.inference_mode = was


class BaseModel(torch.nn.Module):
    """The shared base with every adapter disabled: the KL reference of a LoRA role."""

    def __init__(self, shared: SharedBase) -> None:
        super().__init__()
        self.__dict__["shared"] = shared
        # Registered so `next(parameters())` names the device; frozen, never optimised.
        self.base = torch.nn.ParameterList(shared.base_parameters())

    @property
    def config(self) -> Any:
        return self.shared.peft.get_base_model().config

    def train(self, mode: bool = True) -> BaseModel:
        self.training = mode  # the reference is only read; the shared model keeps its mode
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self.shared.disabled():
            return self.shared.peft.get_base_model()(*args, **kwargs)


def reference_model(policy: HFPolicy) -> BaseModel:
    """The frozen reference of a LoRA role: its base without adapters."""
    model = policy.model
    if not isinstance(model, AdapterModel):
        raise TypeError("reference_model: the policy is not a LoRA role (no AdapterModel)")
    return BaseModel(model.shared)


@dataclass(frozen=True)
class LoraRole:
    """What a LoRA role needs to load: its base, its config, and saved adapter weights if any."""

    base: str  # resolved path or Hub id of the frozen base
    pcfg: PolicyConfig
    adapter: Path | None = None  # a saved adapter dir (resume, or a LoRA checkpoint to start from)


def _group_key(spec: LoraRole, device: str) -> tuple:
    p = spec.pcfg
    base = Path(spec.base)
    base_id = str(base.resolve()) if base.exists() else spec.base
    return (base_id, p.dtype, p.device or device, p.trust_remote_code)


def load_lora_policies(specs: Mapping[Role, LoraRole], device: str) -> dict[Role, HFPolicy]:
    """One `HFPolicy` per role, roles with the same base sharing one frozen copy of it."""
    groups: dict[tuple, list[Role]] = {}
    for role, spec in specs.items():
        groups.setdefault(_group_key(spec, device), []).append(role)
    out: dict[Role, HFPolicy] = {}
    for (base_id, dtype, dev, trust), roles in groups.items():
        out.update(_load_group(base_id, dtype, dev, trust, {r: specs[r] for r in roles}))
    return out


def _load_group(
    base_id: str, dtype: str, device: str, trust: bool, specs: Mapping[Role, LoraRole]
) -> dict[Role, HFPolicy]:
    import peft

    quiet_transformers()
    base = HFPolicy.from_pretrained(base_id, dtype=dtype, device=device, trust_remote_code=trust)
    base.model.requires_grad_(False)
    model: Any = base.model
    for role, spec in specs.items():
        name = role.value
        if spec.adapter is not None and not is_adapter_dir(spec.adapter):
            raise FileNotFoundError(
                f"{spec.adapter}: no {ADAPTER_CONFIG}: not a LoRA adapter directory (role {name} "
                "has lora set; was this run started without lora?)"
            )
        if not isinstance(model, peft.PeftModel):
            if spec.adapter is not None:
                model = peft.PeftModel.from_pretrained(
                    model, str(spec.adapter), adapter_name=name, is_trainable=True
                )
            else:
                model = peft.get_peft_model(model, peft_config(spec.pcfg.lora), adapter_name=name)
        elif spec.adapter is not None:
            model.load_adapter(str(spec.adapter), adapter_name=name, is_trainable=True)
        else:
            model.add_adapter(name, peft_config(spec.pcfg.lora))
        # Checkpoints name their base by absolute path, so they load from any working directory.
        model.peft_config[name].base_model_name_or_path = base_id
    shared = SharedBase(model)
    out = {}
    for role in specs:
        view = AdapterModel(shared, role.value)
        view.adapter.requires_grad_(True)
        out[role] = HFPolicy(view, base.tokenizer)
    shared.activate(next(iter(specs)).value)
    return out
