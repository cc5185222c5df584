"""Where `magic eval`'s models come from: run directories, their checkpoints, the defender, the judge.

A model argument is an HF path/id, a `sandbox:*` or `models:*` name, RUN_DIR (its last checkpoint) or
RUN_DIR/checkpoints/step-N; torch, the policy and the judge load inside the functions.
"""

from __future__ import annotations

from pathlib import Path

from magic_rl.config import RunConfig
from magic_rl.evaluate.run.items import Log
from magic_rl.records import Role


def is_run_dir(path: Path) -> bool:
    return (path / "checkpoints").is_dir() or (path / "config.yaml").is_file()


def run_checkpoints(run_dir: str | Path) -> list[Path]:
    """`checkpoints/step-NNNNNN` directories of a run, by step."""
    ckpts = [p for p in (Path(run_dir) / "checkpoints").glob("step-*") if p.is_dir()]
    if not ckpts:
        raise FileNotFoundError(f"{run_dir}: no checkpoints/step-* directories")
    return sorted(ckpts, key=lambda p: int(p.name.removeprefix("step-")))


def run_dir_of(spec: str) -> Path | None:
    """The run directory a model argument points into (RUN_DIR or RUN_DIR/checkpoints/step-N)."""
    path = Path(spec)
    if path.parent.name == "checkpoints" and path.name.startswith("step-"):
        return path.parent.parent
    return path if is_run_dir(path) else None


def resolve_role_model(spec: str, role: Role, cfg: RunConfig, *, log: Log = print) -> str:
    """An HF path/id, a `sandbox:*` name, RUN_DIR (its LAST checkpoint) or RUN_DIR/checkpoints/
    step-N -> the path of `role`'s model."""
    from magic_rl.sandbox.world import resolve_model

    if spec.startswith(("sandbox:", "models:")):
        return resolve_model(spec, cfg, log=log)
    path = Path(spec)
    if path.parent.name == "checkpoints" and path.name.startswith("step-"):
        ckpt = path
    elif is_run_dir(path):
        ckpt = run_checkpoints(path)[-1]
    else:
        return spec
    if not (ckpt / role.value).is_dir():
        raise FileNotFoundError(f"{ckpt}: no {role.value}/ checkpoint")
    return str(ckpt / role.value)


def load_policy(path: str, role: Role, cfg: RunConfig):
    from magic_rl.policy import HFPolicy, resolve_device

    pcfg = cfg.attacker if role is Role.ATTACKER else cfg.defender
    local = path.startswith((".", "/", "~")) or path.count("/") != 1  # a Hub id is `org/name`
    if local and not Path(path).is_dir():
        raise FileNotFoundError(f"{role.value} model {path!r}: no such directory")
    return HFPolicy.from_pretrained(
        path,
        dtype=pcfg.dtype,
        device=resolve_device(cfg.device),
        trust_remote_code=pcfg.trust_remote_code,
    )


def make_eval_judge(cfg: RunConfig, *, log: Log = print):
    """The run's judge (the embedded one is found, or built, through the sandbox world)."""
    from magic_rl.judge import make_judge
    from magic_rl.sandbox.world import resolve_model

    kw = {}
    if cfg.judge.backend == "embedded":
        kw["embedded_path"] = resolve_model(cfg.judge.model, cfg, log=log)
    return make_judge(cfg.judge, **kw)
