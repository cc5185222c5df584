"""`magic ...`: one subcommand per job. Heavy libraries are imported inside the command that needs them.

Examples:
    magic config show sandbox
    magic validate configs/paper-qwen2.5-7b.yaml
    magic sandbox build
    magic models fetch smollm2-135m-instruct
    magic pool build --out pool.jsonl
    magic sft --config configs/sandbox.yaml
    magic train --config configs/sandbox.yaml game.max_turns=3 name=mt
    magic train --resume runs/demo

Config overrides are dotted `key=value` arguments after the options; they beat the YAML file.

Layout: `common` holds the Typer apps and shared helpers; `world` (config, validate, sandbox, pool),
`training` (sft, train), `evaluation` (eval, attack, crossplay, analyze, report), `serving` (serve),
`experiment` (experiment ablation, attacker), `results` (export, judge audit) and `models` (models fetch,
list) register their commands on `app` when imported below. Run as `magic ...` or
`python -m magic_rl.cli ...`.
"""

from __future__ import annotations

from magic_rl.cli.common import (
    ConfigOpt,
    Overrides,
    app,
    config_app,
    experiment_app,
    pool_app,
    sandbox_app,
    serve_app,
)

# Import order is registration order, which is the order `magic --help` lists the commands in,
# so these stay out of isort's alphabetical sort.
# isort: off
from magic_rl.cli.world import config_show, pool_build, sandbox_build, sandbox_probe, validate
from magic_rl.cli.training import print_summary, sft, train
from magic_rl.cli.evaluation import analyze, attack, crossplay_cmd, eval_cmd, report
from magic_rl.cli.serving import serve_judge_cmd, served_judge
from magic_rl.cli.experiment import experiment_ablation, experiment_attacker
from magic_rl.cli.results import audit_cmd, export_cmd, judge_app
from magic_rl.cli.models import models_fetch, models_list
# isort: on


def main() -> None:
    app(prog_name="magic")


__all__ = [
    "ConfigOpt",
    "Overrides",
    "analyze",
    "app",
    "attack",
    "audit_cmd",
    "config_app",
    "config_show",
    "crossplay_cmd",
    "eval_cmd",
    "experiment_ablation",
    "experiment_attacker",
    "experiment_app",
    "export_cmd",
    "judge_app",
    "main",
    "models_fetch",
    "models_list",
    "pool_app",
    "pool_build",
    "print_summary",
    "report",
    "sandbox_app",
    "sandbox_build",
    "sandbox_probe",
    "serve_app",
    "serve_judge_cmd",
    "served_judge",
    "sft",
    "train",
    "validate",
]
