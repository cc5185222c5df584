"""The page: inline CSS and JS, and `render_report`, which loads the runs, builds the report
and writes the HTML file, its markdown twin and the PNGs the markdown links (each replaced only
if an earlier report wrote it; `magic_rl.data.outputs`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from magic_rl.data.outputs import claim, write_output
from magic_rl.report.markup import _e
from magic_rl.report.runs import _read_json, load_run
from magic_rl.report.sections import build_report

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 28px 60px;background:#fff}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:1.8em}h3{font-size:1em;margin:1.2em 0 .4em}
nav a{margin-right:12px;font-size:.9em}
table{border-collapse:collapse;margin:8px 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
img.plot{max-width:100%;height:auto;display:block;margin:8px 0}
.muted{color:#777;font-size:.85em}
.wide{max-width:100%;overflow-x:auto}.wide table{width:100%}.wide th{white-space:normal;
vertical-align:bottom}.wide td{white-space:nowrap}
.ci{color:#666;font-size:.8em;white-space:nowrap}
.verdict{padding:6px 10px;border-radius:4px;font-weight:600;margin:8px 0}
.verdict.good{background:#e8f5e9;border:1px solid #a5d6a7}
.verdict.bad{background:#fdecea;border:1px solid #f5b7b1}
details{margin:6px 0;font-size:.9em}summary{cursor:pointer;color:#444}
details table td{word-break:break-all}
.exchange{border:1px solid #e3e3e3;border-radius:6px;padding:8px 12px;margin:10px 0}
.exchange .meta{font-size:.8em;color:#555}
.exchange pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px;
margin:4px 0;font-size:.82em;max-height:16em;overflow:auto}
.sensitive{display:none}body.reveal .sensitive{display:block}
body.reveal .redacted{display:none}.redacted{color:#999;font-style:italic;font-size:.85em}
.switch{background:#fff7e6;border:1px solid #f0d9a8;padding:6px 10px;border-radius:4px;
display:inline-block}
"""

JS = """
document.addEventListener('DOMContentLoaded', function () {
  var box = document.getElementById('show-sensitive');
  if (!box) return;
  function apply() {
    document.body.classList.toggle('reveal', box.checked);
    document.body.setAttribute('data-redaction', box.checked ? 'shown' : 'hidden');
  }
  box.addEventListener('change', apply);
  apply();
});
"""


def attacker_experiment(out: Path) -> dict:
    """`magic experiment attacker`'s output directory -> its table (attacker.json) and its curve's
    bands (curve.json) for the report's Attacker section."""
    table = out / "attacker.json"
    if not table.is_file():
        raise FileNotFoundError(f"--attacker-experiment {out}: no attacker.json (a `magic experiment "
                                "attacker` --out directory holds one)")  # fmt: skip
    curve = out / "curve.json"
    bands = _read_json(curve).get("band", {}) if curve.is_file() else {}
    return {"table": _read_json(table), "source": str(table), "bands": bands}


def arms_race_result(out: Path) -> dict:
    """`magic experiment arms-race`'s output directory -> arms_race.json for the report."""
    path = out / "arms_race.json"
    if not path.is_file():
        raise FileNotFoundError(f"--arms-race {out}: no arms_race.json (a `magic experiment "
                                "arms-race` --out directory holds one)")  # fmt: skip
    return {**_read_json(path), "source": str(path)}


# What every file of a report holds near its start (older reports too), so a rerun replaces its own
# report and nothing else: the HTML's <title>, the markdown's first line, matplotlib's PNG metadata.
HTML_MARK = "<title>MAGIC run report: "
MD_MARK = "# MAGIC run report: "
PNG_MARK = "Matplotlib"


def render_report(
    run_dirs: Sequence[str | Path],
    out: str | Path | None = None,
    ablation: str | Path | dict | None = None,
    *,
    attacker: str | Path | None = None,
    arms_race: str | Path | None = None,
    show_text: bool = False,
    force: bool = False,
) -> tuple[Path, Path]:
    """Write the HTML report and its markdown twin (+ `<stem>_files/*.png`); returns both paths.
    Default `out`: RUN_DIR/report.html of the first run. `out` must end in .html; a file in the
    way that an earlier report did not write is refused unless `force` (data/outputs.py)."""
    if not run_dirs:
        raise ValueError("render_report: no run directories")
    if out is not None and Path(out).suffix.lower() not in (".html", ".htm"):
        raise ValueError(
            f"--out {out}: the report is an HTML file, name it X.html (its markdown twin is "
            "written beside it as X.md, its plots under X_files/)"
        )
    paths = [Path(p) for p in run_dirs]
    names = [p.name for p in paths]
    labels = [p.name if names.count(p.name) == 1 else f"{p.parent.name}/{p.name}" for p in paths]
    runs = [load_run(p, label) for p, label in zip(paths, labels, strict=True)]
    out = Path(out) if out is not None else paths[0] / "report.html"
    ablation_source = "ablation"
    if isinstance(ablation, str | Path):
        ablation_source = str(ablation)
        ablation = _read_json(Path(ablation))
    files_dir = f"{out.stem}_files"
    rep = build_report(
        runs,
        ablation,
        files_dir=files_dir,
        show_text=show_text,
        ablation_source=ablation_source,
        attacker=None if attacker is None else attacker_experiment(Path(attacker)),
        arms_race=None if arms_race is None else arms_race_result(Path(arms_race)),
    )

    title = "MAGIC run report: " + ", ".join(run.label for run in runs)
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("summary", "summary"),
            ("curves", "curves"),
            ("crossplay", "cross-play"),
            ("strategy", "attack patterns"),
            ("eval", "evaluation"),
            ("ablation", "ablation"),
            ("attacker", "attacker"),
            ("arms-race", "arms race"),
            ("samples", "samples"),
        )
        if f'id="{a}"' in "".join(rep.html)
    )
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style><script>{JS}</script></head>\n"
        f"<body><main><h1>{_e(title)}</h1><nav>{nav}</nav>\n"
        + "\n".join(rep.html)
        + "\n</main></body></html>\n"
    )
    # Every file is claimed before any is written: a refusal leaves everything as it was.
    md_path = out.with_suffix(".md")
    fdir = out.parent / files_dir
    targets = [(out, doc, HTML_MARK), (md_path, f"# {title}\n" + "\n".join(rep.md), MD_MARK)]
    targets += [(fdir / f"{fig.name}.png", fig.png, PNG_MARK) for fig in rep.figures]
    for path, _, mark in targets:
        claim(path, mark, writer="magic report", force=force)
    for path, data, mark in targets:
        write_output(path, data, mark=mark, writer="magic report", force=force)
    return out, md_path
