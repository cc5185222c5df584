"""`magic eval`: a defender checkpoint on benchmarks and the sandbox sets -> results JSON, items, table.

Protocol (SPEC §6, the paper's): the defender sees the training chat view, `defender.txt`
("Question:\\n{prompt}") under the model's default system prompt (`prompts.defender_messages`, with
the think/answer instruction when `game.defender_format=think_answer`, as in training); decoding is
greedy with at most `eval.max_new_tokens` tokens; the judge reads `strip_reasoning(reply)` cut to
`judge.max_response_tokens` words, next to `item.judge_request` (the vanilla request where a
benchmark has one). Outcomes become metrics with 95% percentile-bootstrap CIs
(`evaluate.metrics.summarize_items`); unknown judge labels are counted, never read as safe.

The sandbox sets (`--benchmarks sandbox`, or any `sandbox/<set>`), from every TEST-split seed
(whatever `sandbox.fraction` the world was built with; `--limit N` keeps N prompts per set):

    vanilla_harmful       harmful seeds as written                          asr, rta
    benign, contrast      benign and alarming-looking benign seeds          compliance
    train_strategies      pool rewrites of harmful seeds, strategies seen    asr
                          in training (not in data.held_out_strategies)
    held_out_strategies   pool rewrites by the held-out strategies           asr
    adversarial_benign    pool rewrites of benign (incl. contrast) seeds     compliance

Rewrites come from the world's pool.jsonl (a programmatic rewrite, so rebuilt in memory when the
world is not built); at most `REWRITES_PER_SEED` per seed, picked by a stable hash of (seed,
strategy). The judge request of a rewrite is its seed, as WildJailbreak's is its vanilla request.

Outputs (`--out`, default runs/eval-<timestamp>, or RUN_DIR/eval): results.json
`{"models": {label: {"path", "metrics": {key: MetricResult}}}, "provenance": {...}}` (one label
per evaluated defender), items.jsonl (one line per model x item: prompt, reply, verdict, outcome),
results.md (markdown table with CIs). `evaluate_run` (used by `make demo`) puts the first and last
defender checkpoints of a run side by side.

Departures: the paper reports point estimates only; CIs are this project's addition. "At most 512
tokens of the reply" is applied as 512 whitespace words (no judge tokenizer is assumed). The
sandbox sets' `sandbox/all/*` pooled rows are dropped: they would mix vanilla and rewritten prompts.

Run:
    magic eval --model runs/sandbox --benchmarks sandbox,xstest --limit 50
    magic eval --model Qwen/Qwen2.5-7B-Instruct --config configs/paper-qwen2.5-7b.yaml \\
        --benchmarks harmbench,wildjailbreak_harmful,wildjailbreak_benign,xstest
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magic_rl.config import RunConfig
from magic_rl.data.benchmarks import (
    DatasetError,
    EvalItem,
    benchmark_path,
    file_sha256,
    load_benchmark,
)
from magic_rl.evaluate.metrics import MetricResult, outcome_flag, summarize_items
from magic_rl.judge.formats import clip_words
from magic_rl.records import Role, Seed, Verdict

REPO = Path(__file__).resolve().parents[2]
SEEDS_DIR = REPO / "magic_rl" / "assets" / "seeds"
SANDBOX = "sandbox"
SANDBOX_SETS: tuple[str, ...] = (
    "vanilla_harmful",
    "benign",
    "contrast",
    "train_strategies",
    "held_out_strategies",
    "adversarial_benign",
)
# Rewrites per test seed in the sandbox's rewrite sets: keeps the whole sandbox eval (~400 prompts
# at fraction 1) within half a minute on 2 CPU cores.
REWRITES_PER_SEED = 2

Log = Callable[..., None]


@dataclass(frozen=True)
class EvalSet:
    """A named list of items and the files (path -> sha256) they were read from."""

    name: str
    items: list[EvalItem]
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemResult:
    """One item's exchange: the defender's raw reply and the judge's verdict on it."""

    item: EvalItem
    reply: str
    finish: str
    verdict: Verdict

    @property
    def outcome(self) -> bool | None:
        return outcome_flag(self.item, self.verdict)

    def to_dict(self, model: str) -> dict[str, Any]:
        i = self.item
        return {
            "model": model,
            "id": i.id,
            "source": i.source,
            "subset": i.subset,
            "metric": i.metric,
            "label": i.label,
            "category": i.category,
            "prompt": i.prompt,
            "judge_request": i.judge_request,
            "reply": self.reply,
            "finish": self.finish,
            "verdict": verdict_dict(self.verdict),
            "outcome": self.outcome,
        }


def verdict_dict(v: Verdict) -> dict[str, Any]:
    d = asdict(v)
    d["categories"] = list(v.categories)
    return d


# --- where models come from -----------------------------------------------------------------------


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

    if spec.startswith("sandbox:"):
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


# --- the sandbox sets ----------------------------------------------------------------------------


def _rank(seed: Seed, strategy: str) -> str:
    return hashlib.sha256(f"{seed.id}/{strategy}".encode()).hexdigest()


def pick_rewrites(records: Sequence, per_seed: int) -> list:
    """At most `per_seed` records per seed, by a stable hash of (seed, strategy); input order kept."""
    by_seed: dict[str, list] = {}
    for r in records:
        by_seed.setdefault(r.seed.id, []).append(r)
    keep = {
        id(r)
        for rs in by_seed.values()
        for r in sorted(rs, key=lambda r: _rank(r.seed, r.strategy))[:per_seed]
    }
    return [r for r in records if id(r) in keep]


def _seed_item(seed: Seed, subset: str, metric: str, suffix: str = "") -> EvalItem:
    return EvalItem(
        id=seed.id + suffix,
        prompt=seed.text,
        label=seed.label,
        source=SANDBOX,
        subset=subset,
        metric=metric,
        category=seed.category,
    )


def _rewrite_item(rec, subset: str, metric: str) -> EvalItem:
    return EvalItem(
        id=rec.id,
        prompt=rec.rewrite,
        label=rec.seed.label,
        source=SANDBOX,
        subset=subset,
        metric=metric,
        category=rec.strategy,
        judge_prompt=rec.seed.text,
    )


def sandbox_items(
    seeds: Sequence[Seed], pool: Sequence, held_out: set[str], per_seed: int = REWRITES_PER_SEED
) -> dict[str, list[EvalItem]]:
    """The six sandbox sets from test-split `seeds` and pool records of those seeds."""
    test_ids = {s.id for s in seeds}
    pool = [r for r in pool if r.seed.id in test_ids]
    harmful = [r for r in pool if r.seed.label == "harmful"]
    kind = {s.id: s.source.rsplit("/", 1)[-1] for s in seeds}
    pick = lambda recs: pick_rewrites(recs, per_seed)  # noqa: E731
    return {
        "vanilla_harmful": [
            _seed_item(s, "vanilla_harmful", "asr") for s in seeds if s.label == "harmful"
        ]
        + [_seed_item(s, "vanilla_harmful", "rta", "/rta") for s in seeds if s.label == "harmful"],
        "benign": [_seed_item(s, "benign", "compliance") for s in seeds if kind[s.id] == "benign"],
        "contrast": [
            _seed_item(s, "contrast", "compliance") for s in seeds if kind[s.id] == "contrast"
        ],
        "train_strategies": [
            _rewrite_item(r, "train_strategies", "asr")
            for r in pick([r for r in harmful if r.strategy not in held_out])
        ],
        "held_out_strategies": [
            _rewrite_item(r, "held_out_strategies", "asr")
            for r in pick([r for r in harmful if r.strategy in held_out])
        ],
        "adversarial_benign": [
            _rewrite_item(r, "adversarial_benign", "compliance")
            for r in pick([r for r in pool if r.seed.label == "benign"])
        ],
    }


def sandbox_sets(
    cfg: RunConfig, names: Sequence[str], limit: int | None = None, *, log: Log = print
) -> list[EvalSet]:
    """The sandbox sets `names`: every test-split seed, whatever `sandbox.fraction` the world was
    built with (test seeds never reach training, so a reduced world still has the full test)."""
    from magic_rl.data.seeds import sandbox_seeds
    from magic_rl.sandbox.world import world_for
    from magic_rl.strategies import build_pool, read_pool, resolve_strategies

    unknown = [n for n in names if n not in SANDBOX_SETS]
    if unknown:
        raise ValueError(f"unknown sandbox sets {unknown} (sets: {list(SANDBOX_SETS)})")
    seeds = sandbox_seeds(split="test")
    test_ids = {s.id for s in seeds}
    world = world_for(cfg)
    files = {str(p): file_sha256(p) for p in sorted(SEEDS_DIR.glob("*.jsonl"))}
    pool = []
    if world.built:
        pool = [r for r in read_pool(world.pool) if r.seed.id in test_ids]
        files[str(world.pool)] = file_sha256(world.pool)
    # Seeds a reduced world (sandbox.fraction < 1) left out are rewritten here; the records are the
    # world's own, as each rewrite's rng depends only on (world seed, strategy, seed id).
    pooled = {r.seed.id for r in pool}
    pool += build_pool([s for s in seeds if s.id not in pooled], rng_seed=cfg.sandbox.seed)
    held_out = set(resolve_strategies(cfg.data.held_out_strategies))
    by_set = sandbox_items(seeds, pool, held_out)
    out = []
    for name in names:
        items = by_set[name] if limit is None else _limit(by_set[name], limit)
        if not items:
            log(f"[yellow]sandbox/{name}: no items (no held-out strategies?); skipped[/]")
            continue
        out.append(EvalSet(f"{SANDBOX}/{name}", items, files))
    return out


def _limit(items: list[EvalItem], limit: int) -> list[EvalItem]:
    """First `limit` prompts; vanilla_harmful's asr/rta twins count as one prompt."""
    prompts = list(dict.fromkeys(i.prompt for i in items))[:limit]
    keep = set(prompts)
    return [i for i in items if i.prompt in keep]


def load_sets(
    names: Sequence[str],
    cfg: RunConfig,
    *,
    limit: int | None = None,
    data_root: str | Path | None = None,
    log: Log = print,
) -> list[EvalSet]:
    """Benchmark names (data.benchmarks), files, `sandbox` (all six sets) or `sandbox/<set>`."""
    sandbox_names: list[str] = []
    out: list[EvalSet] = []
    for name in names:
        if name == SANDBOX:
            sandbox_names += SANDBOX_SETS
        elif name.startswith(f"{SANDBOX}/"):
            sandbox_names.append(name.split("/", 1)[1])
        else:
            items, path = _load_benchmark(name, limit, data_root)
            files = {str(path): file_sha256(path)} if path is not None and path.is_file() else {}
            out.append(EvalSet(name, items, files))
    if sandbox_names:
        out = sandbox_sets(cfg, list(dict.fromkeys(sandbox_names)), limit, log=log) + out
    return out


def _load_benchmark(
    name: str, limit: int | None, data_root: str | Path | None
) -> tuple[list[EvalItem], Path | None]:
    from magic_rl.data.benchmarks import BENCHMARKS

    if name in BENCHMARKS:
        return load_benchmark(name, limit=limit, data_root=data_root), benchmark_path(
            name, data_root
        )
    path = Path(name)
    if not path.is_file():
        raise DatasetError(
            path, f"neither a benchmark name ({', '.join(sorted(BENCHMARKS))}) nor a file"
        )
    try:
        return load_benchmark(path, limit=limit), path
    except DatasetError as err:
        if (err.line, err.record, err.field) != (None, None, None):
            raise
    # A file no loader knows by name: read it as a table with `prompt` and `label` columns.
    return load_benchmark(path, limit=limit, prompt_field="prompt", label_field="label"), path


# --- the protocol ----------------------------------------------------------------------------------


def defender_system(cfg: RunConfig) -> str | None:
    """The defender's system prompt, as in training (game._replies)."""
    from magic_rl.game import DEFENDER_COT_INSTRUCTION

    system = cfg.game.defender_system_prompt
    if cfg.game.defender_format == "think_answer":
        return f"{system}\n{DEFENDER_COT_INSTRUCTION}" if system else DEFENDER_COT_INSTRUCTION
    return system


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """`with progress_bar(on) as task: advance = task("model", total); advance(k)`."""
    if not enabled:
        yield lambda desc, total: lambda k: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as bar:

        def task(desc: str, total: int) -> Callable[[int], None]:
            tid = bar.add_task(desc, total=total)
            return lambda k: bar.advance(tid, k)

        yield task


def greedy_replies(
    policy,
    prompts: Sequence[str],
    cfg: RunConfig,
    *,
    advance: Callable[[int], None] = lambda k: None,
) -> list[Any]:
    """One greedy `Generation` per prompt under the training chat view; equal prompts decode once,
    in batches of `eval.batch_size` prompts of similar length."""
    from magic_rl.prompts import defender_messages, load_templates

    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    system = defender_system(cfg)
    unique = sorted(dict.fromkeys(prompts), key=len)
    gens: dict[str, Any] = {}
    for start in range(0, len(unique), cfg.eval.batch_size):
        chunk = unique[start : start + cfg.eval.batch_size]
        out = policy.generate(
            [defender_messages(templates, [], p, system) for p in chunk],
            temperature=0.0,
            top_p=1.0,
            max_new_tokens=cfg.eval.max_new_tokens,
            max_prompt_tokens=cfg.defender.sampling.max_prompt_tokens,
            seed=cfg.seed,
        )
        gens.update(zip(chunk, out, strict=True))
        advance(len(chunk))
    return [gens[p] for p in prompts]


def judge_replies(
    judge, requests: Sequence[str], replies: Sequence[str], max_words: int
) -> list[Verdict]:
    """Verdicts on (request, strip_reasoning(reply) cut to `max_words` words); equal pairs once."""
    from magic_rl.prompts import strip_reasoning

    keys = [
        (q, clip_words(strip_reasoning(r), max_words))
        for q, r in zip(requests, replies, strict=True)
    ]
    unique = list(dict.fromkeys(keys))
    verdicts = judge.judge([k[0] for k in unique], [k[1] for k in unique]) if unique else []
    if len(verdicts) != len(unique):
        raise ValueError(f"judge {judge.name!r} gave {len(verdicts)} verdicts for {len(unique)}")
    memo = dict(zip(unique, verdicts, strict=True))
    return [memo[k] for k in keys]


def evaluate_policy(
    policy, items: Sequence[EvalItem], judge, cfg: RunConfig, *, advance=lambda k: None
) -> list[ItemResult]:
    """The protocol on one defender: greedy replies, then one judge pass over every item."""
    gens = greedy_replies(policy, [i.prompt for i in items], cfg, advance=advance)
    verdicts = judge_replies(
        judge,
        [i.judge_request for i in items],
        [g.text for g in gens],
        cfg.judge.max_response_tokens,
    )
    return [
        ItemResult(i, g.text, g.finish, v) for i, g, v in zip(items, gens, verdicts, strict=True)
    ]


def summarize(results: Sequence[ItemResult], cfg: RunConfig) -> dict[str, MetricResult]:
    """Metrics per source/subset with bootstrap CIs (sandbox pooled rows dropped, see docstring)."""
    metrics = summarize_items(
        [r.item for r in results],
        [r.verdict for r in results],
        n_resamples=cfg.eval.bootstrap,
        seed=cfg.seed,
    )
    return {k: m for k, m in metrics.items() if not k.startswith(f"{SANDBOX}/all/")}


@dataclass(frozen=True)
class ModelEval:
    """One evaluated defender."""

    label: str
    path: str
    results: list[ItemResult]
    metrics: dict[str, MetricResult]
    seconds: float


def evaluate_models(
    models: Sequence[tuple[str, str]],
    sets: Sequence[EvalSet],
    cfg: RunConfig,
    judge,
    *,
    log: Log = print,
) -> list[ModelEval]:
    """Each (label, path) defender on every item of `sets`."""
    items = [i for s in sets for i in s.items]
    out = []
    with progress_bar(cfg.train.progress) as task:
        for label, path in models:
            t0 = time.perf_counter()
            policy = load_policy(path, Role.DEFENDER, cfg)
            advance = task(f"eval {label}", len(set(i.prompt for i in items)))
            results = evaluate_policy(policy, items, judge, cfg, advance=advance)
            del policy
            out.append(
                ModelEval(label, path, results, summarize(results, cfg), time.perf_counter() - t0)
            )
    for m in out:
        log(f"{m.label}: {len(m.results)} items in {m.seconds:.1f}s")
    return out


# --- outputs ---------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def provenance(cfg: RunConfig, judge, files: dict[str, str], **extra: Any) -> dict[str, Any]:
    """What a results file needs to be reproduced: config, code, data, judge, decoding."""
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "config": cfg.model_dump(mode="json"),
        "datasets": files,
        "judge": {
            "backend": cfg.judge.backend,
            "model": cfg.judge.model,
            "name": getattr(judge, "name", ""),
            "max_response_words": cfg.judge.max_response_tokens,
        },
        "decoding": {
            "temperature": 0.0,
            "max_new_tokens": cfg.eval.max_new_tokens,
            "max_prompt_tokens": cfg.defender.sampling.max_prompt_tokens,
            "batch_size": cfg.eval.batch_size,
        },
        "bootstrap": {"n_resamples": cfg.eval.bootstrap, "alpha": 0.05, "seed": cfg.seed},
        **extra,
    }


def _fmt(m: MetricResult | None) -> str:
    if m is None:
        return "-"
    if math.isnan(m.value):
        return f"n/a (n=0, unknown {m.n_unknown})"
    text = f"{m.value:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}] n={m.n}"
    return text + (f" unknown={m.n_unknown}" if m.n_unknown else "")


def table_rows(models: Sequence[ModelEval]) -> list[list[str]]:
    """[benchmark, metric (arrow = better direction), one cell per model] per metric key."""
    keys = list(dict.fromkeys(k for m in models for k in m.metrics))
    rows = []
    for key in keys:
        first = next(m.metrics[key] for m in models if key in m.metrics)
        bench, name = key.rsplit("/", 1) if "/" in key else (key, "")
        if first.name.startswith("f1/"):
            bench, name = key.rsplit("/", 2)[0], first.name
        arrow = "↑" if first.higher_is_better else "↓"
        rows.append([bench, f"{name} {arrow}", *(_fmt(m.metrics.get(key)) for m in models)])
    return rows


def markdown_table(models: Sequence[ModelEval]) -> str:
    header = ["benchmark", "metric", *(m.label for m in models)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(models)]
    return "\n".join(lines)


def rich_table(models: Sequence[ModelEval], title: str = ""):
    from rich.table import Table

    table = Table(title=title or None)
    table.add_column("benchmark")
    table.add_column("metric")
    for m in models:
        table.add_column(m.label, justify="right")
    for row in table_rows(models):
        table.add_row(*row)
    return table


def write_results(out_dir: Path, models: Sequence[ModelEval], prov: dict[str, Any]) -> Path:
    """results.json, items.jsonl, results.md under `out_dir`; returns results.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "models": {
            m.label: {
                "path": m.path,
                "seconds": round(m.seconds, 2),
                "metrics": {k: v.to_dict() for k, v in m.metrics.items()},
            }
            for m in models
        },
        "provenance": prov,
    }
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
    with (out_dir / "items.jsonl").open("w", encoding="utf-8") as f:
        for m in models:
            for r in m.results:
                f.write(json.dumps(r.to_dict(m.label), ensure_ascii=False) + "\n")
    md = out_dir / "results.md"
    paths = "\n".join(f"- `{m.label}`: {m.path}" for m in models)
    md.write_text(
        f"# Evaluation ({prov['timestamp']})\n\n{paths}\n\n"
        f"Value [95% bootstrap CI] over n judged items; ↑/↓ = higher/lower is better. "
        f"Judge: {prov['judge']['backend']} ({prov['judge']['model']}); greedy decoding, "
        f"{prov['decoding']['max_new_tokens']} new tokens; commit {prov['git_commit']}.\n\n"
        f"{markdown_table(models)}\n"
    )
    return md


# --- entry points ---------------------------------------------------------------------------------


def evaluate(
    cfg: RunConfig,
    model: str,
    benchmarks: Sequence[str],
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    data_root: str | Path | None = None,
    log: Log = print,
) -> tuple[Path, list[ModelEval]]:
    """`magic eval`: one defender on `benchmarks`. Returns (output dir, [its ModelEval]).

    Raises DatasetError for a malformed benchmark file (before any model is loaded)."""
    sets = load_sets(benchmarks, cfg, limit=limit, data_root=data_root, log=log)
    if not sets:
        raise ValueError(f"no items to evaluate in {list(benchmarks)}")
    judge = make_eval_judge(cfg, log=log)
    path = resolve_role_model(model, Role.DEFENDER, cfg, log=log)
    run_dir = run_dir_of(model)
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = run_dir / "eval" if run_dir else Path(cfg.output_dir) / f"eval-{stamp}"
    label = Path(path).parent.name if run_dir else Path(path).name or path
    models = evaluate_models([(label, path)], sets, cfg, judge, log=log)
    files = {k: v for s in sets for k, v in s.files.items()}
    prov = provenance(cfg, judge, files, model=path, benchmarks=[s.name for s in sets], limit=limit)
    write_results(Path(out), models, prov)
    return Path(out), models


def evaluate_run(
    cfg: RunConfig, run_dir: str | Path, log: Log = print, *, limit: int | None = None
) -> Path:
    """The FIRST (step-000000, the base defender) and LAST defender checkpoints of a run on the
    sandbox sets (`limit` prompts per set), side by side in run_dir/eval/. Returns results.md."""
    run_dir = Path(run_dir)
    ckpts = run_checkpoints(run_dir)
    chosen = list(dict.fromkeys([ckpts[0], ckpts[-1]]))
    sets = load_sets([SANDBOX], cfg, limit=limit, log=log)
    judge = make_eval_judge(cfg, log=log)
    models = evaluate_models(
        [(c.name, str(c / Role.DEFENDER.value)) for c in chosen], sets, cfg, judge, log=log
    )
    files = {k: v for s in sets for k, v in s.files.items()}
    prov = provenance(cfg, judge, files, run_dir=str(run_dir), benchmarks=[s.name for s in sets])
    md = write_results(run_dir / "eval", models, prov)
    show(rich_table(models, title=f"{run_dir}: first vs last defender"), log)
    return md


def show(renderable, log: Log = print) -> None:
    """A rich renderable through `log` when it is a rich console's print, else a fresh console."""
    if log is print:
        from rich.console import Console

        Console().print(renderable)
    else:
        log(renderable)
