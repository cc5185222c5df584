"""What a user reads: the progress line at 80 and 140 columns and in a log (no terminal), tables
that keep their row keys whole at 80 columns, results as tables rather than dicts, a quiet SFT, the
phase-1 attacker's warnings, `sandbox probe`'s table and files, strategy names in `analyze`."""

from __future__ import annotations

import io
import json
import math
import re
import warnings

import pytest
from rich.console import Console

from magic_rl.progress import TrainProgress, describe
from magic_rl.tables import key_table, record_table

METRICS = {
    "schedule/role": "defender",
    "game/asr": 0.5,
    "defender/refusal_rate/harmful": 0.71,
    "defender/refusal_rate/benign": 0.1,
    "attacker/format_rate": 0.99,
    "attacker/faithful_rate": 0.98,
    "time/step": 12.3,
}
BAR = re.compile(r"train [━╸╺ ]+ (\d+)/60 \d:\d\d:\d\d (\d:\d\d:\d\d|-:--:--)")


def _terminal(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system=None), out


def _live_lines(out: io.StringIO) -> list[str]:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    return [line for line in re.split(r"[\r\n]", text) if line.startswith("train")]


@pytest.mark.parametrize("width", [60, 80, 140])
def test_the_live_line_keeps_bar_count_and_times_whole_at_any_width(width):
    console, out = _terminal(width)
    with TrainProgress(60, console=console) as bar:
        for _ in range(12):
            bar.update(METRICS)
    last = _live_lines(out)[-1]
    assert BAR.match(last), last  # the bar, 12/60, elapsed and remaining, none cut
    assert BAR.match(last).group(1) == "12"
    assert "…" not in last and len(last) <= width
    assert "role defender" in last  # the first field fits even at 60 columns
    if width == 80:
        assert "s/step" not in last  # the metric fields give way, last first
    if width == 140:
        assert "refuse(harm) 0.71" in last


def test_describe_drops_the_last_fields_first():
    assert describe(METRICS, 20) == "role defender"
    assert describe(METRICS, 0) == ""
    assert describe(METRICS).endswith("s/step 12.3")


def test_without_a_terminal_one_plain_line_every_k_steps_and_the_last():
    out = io.StringIO()
    console = Console(file=out, width=80)  # not a terminal: a log, CI, `make demo > log`
    with TrainProgress(10, 0, every=4, console=console) as bar:
        for _ in range(10):
            bar.update(METRICS)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["4/10", "8/10", "10/10"]
    assert all("\x1b" not in line and "━" not in line for line in lines)
    assert lines[-1].startswith("train 10/10 (100%)") and "s/step 12.3" in lines[-1]  # uncut
    assert "elapsed" in lines[0] and "left" in lines[0]


def test_without_a_terminal_a_resumed_run_counts_from_its_start():
    out = io.StringIO()
    with TrainProgress(40, 30, console=Console(file=out, width=80)) as bar:  # every 2 (40 / 20)
        for _ in range(10):
            bar.update({})
    assert [line.split()[1] for line in out.getvalue().splitlines()] == [
        f"{n}/40" for n in (32, 34, 36, 38, 40)
    ]


AUDIT = (
    ["set", "signal", "n", "accuracy [95% CI]", "F1 [95% CI]", "tp/fp/fn/tn", "unknown"],
    [
        ["wildguardtest_judge/adversarial_harmful", "response_harmful<-not_refused", "40"]
        + ["0.975 [0.925, 1.000]", "0.987 [0.959, 1.000]", "38/1/0/1", "40 (unsupported 40)"],
        ["jailbreakbench_artifacts", "prompt_harmful", "100"]
        + ["0.500 [0.400, 0.600]", "0.300 [0.200, 0.400]", "10/2/3/85", "0"],
    ],
)


def _render(renderable, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def _column(text: str, i: int) -> str:
    """Column `i` of a boxed table's body, its lines joined (folded cells read back whole)."""
    lines = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    return "".join(parts[i + 1].replace(" ", "") for parts in lines if len(parts) > i + 1)


def _joined(text: str) -> str:
    """The table's cell text with borders, padding and line breaks removed."""
    return re.sub(r"[\s│┃┏┓┗┛┡┩└┘━─┳┻╇┴┼├┤╋┠┨]", "", text)


@pytest.mark.parametrize("width", [60, 80, 140])
def test_key_table_never_cuts_a_row_key(width):
    text = _render(key_table("judge keyword", *AUDIT, keys=2), width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    keys = _column(text, 0) + "|" + _column(text, 1)
    for row in AUDIT[1]:
        for key in row[:2]:
            assert key in keys, (key, text)


def test_key_table_keeps_keys_on_one_line_when_the_values_can_wrap():
    rows = [["vanilla", "benign", "60", "compliance 0.72 [0.60, 0.82]", "0.28", "1.00"]]
    headers = ["strategy", "seeds", "n", "ASR / compliance [95% CI]", "refusal", "carried"]
    text = _render(key_table(None, headers, rows, keys=2), 60)
    body = [line for line in text.splitlines() if "vanilla" in line]
    assert body and "benign" in body[0]  # both keys whole on the row's first line
    assert _column(text, 3) == "compliance0.72[0.60,0.82]"  # the value wrapped, nothing lost
    narrow = _render(key_table(None, headers, rows, keys=2), 50)
    assert _column(narrow, 0) == "vanillabenign"  # no room side by side: one above the other
    assert _column(narrow, 2) == "compliance0.72[0.60,0.82]"


def test_a_result_is_a_table_not_a_dict():
    text = _render(record_table("judge: held-out accuracy", {"prompt_harmful": 0.98125}), 80)
    assert "{" not in text and "'" not in text
    assert "prompt_harmful" in text and "0.9812" in text
    assert "{" not in str(record_table("x", {"a": [1, 2]}))  # through plain print too
    counts = _render(record_table("judge", {"n_prompt": 11844.0, "tiny": 0.00012}), 80)
    assert "11,844" in counts and "e+04" not in counts and "0.00012" in counts
    wide = {"held_out_requests": 0.6914, "n_held_out_requests": 81.0, "excluded": ["a", "b"]}
    text = _render(record_table("learnability", wide), 40)  # too wide side by side
    lines = text.splitlines()
    assert lines[0].strip() == "learnability"
    assert [line.split()[0] for line in lines[1:]] == list(wide)  # one field per line
    assert "0.6914" in lines[1] and lines[3].split(None, 1)[1].strip() == "a, b"


def test_attacker_check_below_its_aim_warns():
    from magic_rl.sandbox.checks import attacker_warnings

    lines = attacker_warnings({"n": 96, "format_rate": 0.0, "faithful_rate": 0.95})
    assert len(lines) == 1 and "format_rate 0.00 is below its aim 0.90" in lines[0]
    assert attacker_warnings({"format_rate": 0.97, "faithful_rate": 0.99}) == []


def test_probe_rows_put_each_interval_beside_its_value(tmp_path):
    from magic_rl.sandbox.probe import ProbeRow, markdown_table, rich_table, table_rows, write_probe

    rows = [
        ProbeRow("vanilla", "benign", 10, 0.0, 0.7, 1.0, (0.0, 0.6)),  # compliance 0.30
        ProbeRow("slang", "harmful", 10, 0.4, 0.5, math.nan, (0.1, 0.7)),
    ]
    cells = table_rows(rows)
    assert cells[0][3] == "compliance 0.30 [0.00, 0.60]" and cells[0][4] == "0.70"
    assert cells[1][3] == "ASR 0.40 [0.10, 0.70]" and cells[1][5] == "-"
    for r in rows:
        assert r.ci[0] <= r.headline <= r.ci[1]
    text = _render(rich_table(rows, "base model"), 80)
    assert "|" not in text and "vanilla" in text and "…" not in text
    path = write_probe(rows, tmp_path / "p", {"model": "base"})
    doc = json.loads(path.read_text())
    assert doc["provenance"] == {"model": "base"}
    assert [r["headline"] for r in doc["rows"]] == pytest.approx([0.3, 0.4])
    assert (tmp_path / "p" / "probe.md").read_text().strip() == markdown_table(rows)


def test_strategy_codes_show_their_names():
    from magic_rl.evaluate.analyze import code_name

    assert code_name("0_13") == "role-play + encoding (0_13)"
    assert code_name("19") == "none (19)"
    assert code_name("unknown") == "unknown"


@pytest.mark.slow
def test_magic_sft_prints_our_progress_and_a_table_and_no_warning(tiny_overrides, tmp_path):
    from typer.testing import CliRunner

    from magic_rl.cli import app
    from magic_rl.config import load_config
    from magic_rl.sandbox.world import world_for

    pool = world_for(load_config("sandbox", tiny_overrides)).pool
    args = ["sft", *tiny_overrides, "train.progress=true", f"sft.pool={pool}"]
    args += ["sft.max_steps=3", "sft.batch_size=2", f"output_dir={tmp_path}"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sft 3/3 (100%)" in out and "loss" in out  # our line, without a terminal
    assert "{'loss'" not in out and "it/s" not in out and "{'" not in out  # no Trainer output
    assert "attacker SFT" in out and "train_loss" in out
    assert "Warning" not in out
    ours = [w for w in caught if "gradient_checkpointing" in str(w.message)]
    assert not ours, [str(w.message) for w in ours]


@pytest.mark.slow
def test_a_phase1_build_prints_tables_and_warns_below_the_aims(tiny_overrides):
    from magic_rl.config import load_config
    from magic_rl.sandbox.world import build_attacker, world_for

    # another sft setting: an attacker of its own in the tiny world, trained for 2 steps
    cfg = load_config("sandbox", [*tiny_overrides, "sft.max_steps=2"])
    lines: list = []
    out = build_attacker(cfg, world_for(cfg), log=lines.append)
    text = "\n".join(_render(line, 80) for line in lines)
    assert "attacker SFT" in text and "attacker check" in text
    assert "{'" not in text
    check = json.loads((out / "check.json").read_text())
    assert check["format_rate"] < 0.9  # two steps do not teach the format
    assert "warning: phase-1 attacker format_rate" in text


@pytest.mark.slow
def test_sandbox_probe_prints_a_table_and_saves_it(tiny_overrides, tmp_path):
    from typer.testing import CliRunner

    from magic_rl.cli import app

    out = tmp_path / "probe"
    args = ["sandbox", "probe", "--per-strategy", "2", "--out", str(out), *tiny_overrides]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| strategy |" not in result.output and "vanilla" in result.output
    doc = json.loads((out / "probe.json").read_text())
    assert doc["provenance"]["per_strategy"] == 2 and doc["rows"]
    for row in doc["rows"]:
        assert row["ci"][0] <= row["headline"] <= row["ci"][1]
    assert (out / "probe.md").read_text().startswith("| strategy |")
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.output  # nothing overwritten


def test_key_table_cells_are_text_not_markup():
    text = _render(key_table(None, ["strategy", "note"], [["[request] slang", "[bold]x"]]), 80)
    assert "[request] slang" in text and "[bold]x" in text
