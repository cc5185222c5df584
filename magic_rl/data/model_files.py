"""Is a saved model directory whole? Checks that read headers only, never weights into memory.

A kill while a checkpoint or the resume state is written can leave a 0-byte `config.json`, a
truncated `model.safetensors` or an optimiser file without its zip directory. Loading such a file
fails deep inside transformers or torch with an error that names no file; these checks name it
first, so resume refuses cleanly and checkpoint readers skip or name a torn checkpoint.

- `model_dir_problem(dir)`: None for a whole Hugging Face model or peft adapter directory, else
  one line naming the bad file.
- `file_problem(path)`: the same for one file (JSON, safetensors, torch zip).
- `pickle_problem(dir)`: weights only as pickle files (refused: a pickle can run code on load).
- `run_checkpoint_dirs(run_dir)`: a run's `checkpoints/step-NNNNNN` with their problems, by step
  (the training loop writes them to a hidden temporary folder and renames it, so a listing never
  sees one half-written; older runs may still hold torn ones).

Run: `python -m pytest -q tests/test_resume_faults.py`.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

WEIGHTS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl")
ROLE_DIRS = ("attacker", "defender")


def safetensors_problem(path: Path) -> str | None:
    """The header is read and the file size checked against the last tensor's end offset."""
    size = path.stat().st_size
    if size < 8:
        return f"{path}: truncated ({size} bytes), not a safetensors file"
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if 8 + n > size:
            return f"{path}: truncated inside its header ({size} bytes)"
        try:
            header = json.loads(f.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return f"{path}: unreadable safetensors header"
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"{path}: truncated ({size} of {need} bytes)"
    return None


def json_problem(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as e:
        return f"{path}: unreadable ({e})"
    if not text.strip():
        return f"{path}: empty ({path.stat().st_size} bytes)"
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return f"{path}:{e.lineno}: not valid JSON ({e.msg}): truncated?"
    return None


def zip_problem(path: Path) -> str | None:
    """torch.save files are zip archives; truncation loses the central directory at their end."""
    try:
        with zipfile.ZipFile(path) as z:
            size = path.stat().st_size
            if any(i.header_offset + i.compress_size > size for i in z.infolist()):
                return f"{path}: truncated"
    except (zipfile.BadZipFile, OSError) as e:
        return f"{path}: unreadable or truncated ({e})"
    return None


def file_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{path}: missing"
    if path.stat().st_size == 0:
        return f"{path}: empty (0 bytes)"
    if path.suffix == ".json":
        return json_problem(path)
    if path.suffix == WEIGHTS_SUFFIX:
        return safetensors_problem(path)
    if path.suffix in (".pt", ".pth"):
        return zip_problem(path)
    return None


def model_dir_problem(path: str | Path) -> str | None:
    """None when `path` holds a whole HF model (config.json + safetensors weights) or peft adapter
    (adapter_config.json + adapter_model.safetensors); else the first problem, naming the file."""
    path = Path(path)
    if not path.is_dir():
        return f"{path}: no such directory"
    adapter = (path / "adapter_config.json").exists()
    config = path / ("adapter_config.json" if adapter else "config.json")
    if not config.exists():
        return (
            f"{path}: no config.json: not a Hugging Face model directory (give the directory "
            "that holds config.json and *.safetensors)"
        )
    for p in sorted(path.glob("*.json")):
        if problem := file_problem(p):
            return problem
    weights = sorted(path.glob(f"*{WEIGHTS_SUFFIX}"))
    if not weights:
        return pickle_problem(path) or f"{path}: no *{WEIGHTS_SUFFIX} weights"
    index = path / f"model{WEIGHTS_SUFFIX}.index.json"
    if index.exists():  # sharded weights: every shard the index names must be there
        shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        if missing := sorted(s for s in shards if not (path / s).is_file()):
            return f"{path / missing[0]}: missing (named by {index.name})"
    for p in weights:
        if problem := file_problem(p):
            return problem
    return None


def pickle_problem(path: str | Path) -> str | None:
    """None unless `path` is a directory whose weights exist only as pickle files
    (`pytorch_model.bin`, `*.pt`), which magic-rl refuses to load: a pickle can run code."""
    path = Path(path)
    if not path.is_dir() or any(path.glob(f"*{WEIGHTS_SUFFIX}")):
        return None
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        return None
    return (
        f"{path}: weights only in pickle format ({', '.join(pickles)}); magic-rl loads "
        "safetensors only (a pickle can run code when loaded). Convert once from a trusted "
        "copy: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
        "safe_serialization=True)"
    )


def checkpoint_problem(ckpt: Path) -> str | None:
    """None when every role directory of a `step-NNNNNN` checkpoint is whole."""
    roles = [ckpt / r for r in ROLE_DIRS if (ckpt / r).exists()]
    if not roles:
        return f"{ckpt}: no attacker/ or defender/ model"
    return next((p for r in roles if (p := model_dir_problem(r))), None)


def run_checkpoint_dirs(run_dir: str | Path) -> list[tuple[Path, str | None]]:
    """(checkpoint dir, problem or None) for each `checkpoints/step-NNNNNN` of a run, by step."""
    found = [
        p
        for p in (Path(run_dir) / "checkpoints").glob("step-*")
        if p.is_dir() and p.name.removeprefix("step-").isdigit()
    ]
    found.sort(key=lambda p: int(p.name.removeprefix("step-")))
    return [(p, checkpoint_problem(p)) for p in found]
