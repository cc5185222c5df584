"""Are two built sandbox worlds the same? Every file of both, compared by sha256.

A change that moves the world's cache key (`sandbox.world._source_fingerprint`: code in
`judge/embedded/`, `content.py`, the sandbox's data generators) builds a new world next to the old
one. When the change is meant to leave the world alone, the new world's weights (base model, judge,
SFT'd attackers), tokenizer and pool must be byte for byte the old ones. Only what records how long
a stage took may differ: a JSON file that differs by bytes is compared again with its wall-clock
fields (`VOLATILE`) left out, and counts as the same when nothing else differs.

Run:
    PYTHONPATH=$PWD python benchmarks/world_identity.py .magic_cache/world-OLD .magic_cache/world-NEW
Prints one line per file (same / same but for wall-clock time / DIFFERENT / only in one world)
and a last line with the counts; exits 0 when the worlds are the same, 1 otherwise, 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from magic_rl.model_catalog import sha256_of as sha256

# Keys of a world's JSON files that record wall-clock time, not what was built: build.json's
# `timings_s`, an attacker's sft.json `seconds`.
VOLATILE = frozenset({"timings_s", "seconds"})


def files(world: Path) -> dict[str, Path]:
    """Every file under `world`, by its path relative to it (an attacker folder's name is a hash
    of its SFT config, the same in both worlds when the config is)."""
    return {p.relative_to(world).as_posix(): p for p in sorted(world.rglob("*")) if p.is_file()}


def _without_volatile(obj):
    if isinstance(obj, dict):
        return {k: _without_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_without_volatile(v) for v in obj]
    return obj


def same_but_time(a: Path, b: Path) -> bool:
    """Two JSON files equal once their wall-clock fields are left out."""
    if a.suffix != ".json":
        return False
    try:
        return _without_volatile(json.loads(a.read_text())) == _without_volatile(
            json.loads(b.read_text())
        )
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def compare(old: Path, new: Path) -> list[tuple[str, str, str, str]]:
    """(file, sha256 in old, sha256 in new, verdict) for every file of either world."""
    a, b = files(old), files(new)
    rows = []
    for name in sorted(a.keys() | b.keys()):
        if name not in b:
            rows.append((name, sha256(a[name]), "-", "only in old"))
            continue
        if name not in a:
            rows.append((name, "-", sha256(b[name]), "only in new"))
            continue
        ha, hb = sha256(a[name]), sha256(b[name])
        if ha == hb:
            verdict = "same"
        elif same_but_time(a[name], b[name]):
            verdict = "same but for wall-clock time"
        else:
            verdict = "DIFFERENT"
        rows.append((name, ha, hb, verdict))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="a built world directory (with build.json)")
    parser.add_argument("new", type=Path, help="the world to compare with it")
    args = parser.parse_args(argv)
    for world in (args.old, args.new):
        if not (world / "build.json").is_file():
            print(f"error: {world}: no build.json; not a built world", file=sys.stderr)
            return 2
    rows = compare(args.old, args.new)
    width = max(len(r[0]) for r in rows)
    for name, ha, hb, verdict in rows:
        print(f"{name:<{width}}  {ha[:12]:<12}  {hb[:12]:<12}  {verdict}")
    bad = [r for r in rows if r[3] not in ("same", "same but for wall-clock time")]
    print(
        f"{len(rows)} files: {len(rows) - len(bad)} the same, {len(bad)} not "
        f"({args.old.name} vs {args.new.name})"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
