"""Prompt templates, per-role chat views and `<think>`/`<answer>` parsing (docs/DESIGN.md §1).

Templates are files, not code: `assets/templates/paper/` holds the paper's texts (Appendix B; the
attacker templates follow Self-RedTeam) and `assets/templates/short/` a few-word set for the sandbox's
tiny models, whose context is 512 tokens. A directory given as `game.templates_dir` overrides any of
the files one by one. Files and their placeholders:

    attacker_system.txt            (none)        single-turn attacker system prompt
    attacker_system_multiturn.txt  (none)        multi-turn attacker system prompt
    attacker_harmful.txt           {question}    user prompt for a harmful seed
    attacker_benign.txt            {question}    user prompt for a benign seed
    attacker_feedback.txt          {reply}       multi-turn: the defender's reply, back to the attacker
    defender.txt                   {attack}      the defender's user message ("Question:\\n{attack}")

Placeholders are filled by plain substitution (not `str.format`), so a template may contain other
braces. A file's trailing newlines are dropped.

Departures from the paper and the reference code:
- The paper gives no multi-turn attacker texts; `attacker_system_multiturn.txt` and
  `attacker_feedback.txt` are this project's, written from the paper's one-line description.
- The paper's typeset apostrophes are plain ASCII here; its typos ("You first thinks",
  "< answer>" in the benign template) are kept verbatim.
- The multi-turn defender view starts with the FIRST attack and carries every earlier exchange (the
  reference repeats the latest attack); the defender only ever sees extracted answers, never the
  attacker's reasoning.

Run: `python -c "from magic_rl.prompts import load_templates; print(load_templates('short'))"`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from magic_rl.records import Seed, Turn

TEMPLATES_DIR = Path(__file__).resolve().parent / "assets" / "templates"

TemplateSet = Literal["paper", "short"]

# Field of `Templates` -> the placeholders its file must contain.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "attacker_system": (),
    "attacker_system_multiturn": (),
    "attacker_harmful": ("{question}",),
    "attacker_benign": ("{question}",),
    "attacker_feedback": ("{reply}",),
    "defender": ("{attack}",),
}

Message = dict[str, str]


@dataclass(frozen=True)
class Templates:
    """The six template texts of a run (file name = field name + `.txt`)."""

    attacker_system: str
    attacker_system_multiturn: str
    attacker_harmful: str
    attacker_benign: str
    attacker_feedback: str
    defender: str

    def attacker_user(self, seed: Seed) -> str:
        """The attacker's first user message: the template for the seed's label, filled."""
        template = self.attacker_harmful if seed.label == "harmful" else self.attacker_benign
        return template.replace("{question}", seed.text)

    def feedback(self, reply: str) -> str:
        return self.attacker_feedback.replace("{reply}", reply)

    def defender_user(self, attack: str) -> str:
        return self.defender.replace("{attack}", attack)


def load_templates(
    template_set: TemplateSet = "paper", templates_dir: str | Path | None = None
) -> Templates:
    """Built-in `template_set`, with any file present in `templates_dir` taking its place.

    Raises ValueError naming the file when a placeholder is missing or a file is empty, and when
    `templates_dir` holds a `.txt` file that is no template (most likely a misspelt name).
    """
    builtin = TEMPLATES_DIR / template_set
    if not builtin.is_dir():
        sets = sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir())
        raise ValueError(f"template set {template_set!r} does not exist (sets: {sets})")
    override = Path(templates_dir) if templates_dir is not None else None
    if override is not None:
        if not override.is_dir():
            raise ValueError(f"templates_dir {str(override)!r} is not a directory")
        known = {f"{name}.txt" for name in PLACEHOLDERS}
        unknown = sorted(p.name for p in override.glob("*.txt") if p.name not in known)
        if unknown:
            raise ValueError(
                f"templates_dir {str(override)!r}: {unknown} are not template files "
                f"(expected some of {sorted(known)})"
            )
    texts = {}
    for name, placeholders in PLACEHOLDERS.items():
        path = builtin / f"{name}.txt"
        if override is not None and (override / f"{name}.txt").is_file():
            path = override / f"{name}.txt"
        texts[name] = _read_template(path, placeholders)
    return Templates(**texts)


def _read_template(path: Path, placeholders: tuple[str, ...]) -> str:
    text = path.read_text(encoding="utf-8").rstrip("\n")
    if not text.strip():
        raise ValueError(f"template {path}: file is empty")
    for placeholder in placeholders:
        if placeholder not in text:
            raise ValueError(f"template {path}: missing placeholder {placeholder}")
    return text


# --- chat views --------------------------------------------------------------------------------


def attacker_messages(
    t: Templates, seed: Seed, history: Sequence[Turn], multiturn: bool
) -> list[Message]:
    """What the attacker sees before its next turn.

    system, user(template for the seed), then per earlier turn: assistant(its own raw output,
    reasoning included) and user(feedback carrying the defender's reply).
    """
    if history and not multiturn:
        raise ValueError(f"seed {seed.id!r}: single-turn attacker view given {len(history)} turns")
    system = t.attacker_system_multiturn if multiturn else t.attacker_system
    messages = [_msg("system", system), _msg("user", t.attacker_user(seed))]
    for turn in history:
        messages += [_msg("assistant", turn.attack_raw), _msg("user", t.feedback(turn.reply))]
    return messages


def defender_messages(
    t: Templates, history: Sequence[Turn], attack: str, system_prompt: str | None = None
) -> list[Message]:
    """What the defender sees before replying to `attack` (an extracted answer, never reasoning).

    Optional system prompt (None keeps the model's default, as in the paper), then per earlier turn
    user(template with that turn's extracted attack) and assistant(its reply), then the new attack.
    """
    messages = [_msg("system", system_prompt)] if system_prompt is not None else []
    for turn in history:
        messages += [_msg("user", t.defender_user(turn.attack)), _msg("assistant", turn.reply)]
    messages.append(_msg("user", t.defender_user(attack)))
    return messages


def _msg(role: str, content: str) -> Message:
    return {"role": role, "content": content}


# --- <think>/<answer> --------------------------------------------------------------------------

THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE = "<think>", "</think>", "<answer>", "</answer>"
_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
_STRICT = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_THINK_CONTENT = re.compile(r"<think>(.*?)(?:</think>|(?=<answer>)|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ParsedAttack:
    """An attacker output split into reasoning and the answer the defender will see."""

    reasoning: str
    answer: str
    format_ok: bool


def format_target(reasoning: str, answer: str) -> str:
    """The attacker's SFT target (docs/DESIGN.md §4)."""
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def is_format_ok(text: str) -> bool:
    """R_fmt's check: exactly one non-empty <think> block followed by exactly one non-empty
    <answer> block, with nothing but whitespace around and between them."""
    m = _STRICT.fullmatch(text)
    if m is None:
        return False
    # The lazy groups can still swallow a second tag pair to reach the end; reject those.
    return all(part.strip() and not any(tag in part for tag in _TAGS) for part in m.groups())


def parse_attack(text: str) -> ParsedAttack:
    """Split an attacker output, leniently, so that a malformed output still yields an attack.

    answer: the content of the first <answer> block (unclosed: everything after <answer>), with any
    <think> block inside it removed; without <answer>: the text with <think> blocks removed, where
    an unclosed <think> removes everything after it and a stray </think> (a chat template that
    opens the think block in the prompt) removes everything before it. reasoning: the <think>
    contents, joined.
    """
    reasoning = "\n".join(part.strip() for part in _THINK_CONTENT.findall(text) if part.strip())
    if THINK_OPEN not in text and THINK_CLOSE in text:
        reasoning = text.rsplit(THINK_CLOSE, 1)[0].strip()
    if ANSWER_OPEN in text:
        answer = _strip_think(text.split(ANSWER_OPEN, 1)[1].split(ANSWER_CLOSE, 1)[0])
    else:
        answer = _strip_think(text)
    return ParsedAttack(reasoning=reasoning, answer=answer, format_ok=is_format_ok(text))


def strip_reasoning(text: str) -> str:
    """What an evaluator or judge sees of a generation: the answer if tagged, else the text
    without <think> blocks (docs/DESIGN.md §6)."""
    return parse_attack(text).answer


def _strip_think(text: str) -> str:
    text = _THINK_BLOCK.sub("", text)
    text = text.split(THINK_OPEN, 1)[0]
    text = text.rsplit(THINK_CLOSE, 1)[-1]
    return text.replace(ANSWER_CLOSE, "").strip()
