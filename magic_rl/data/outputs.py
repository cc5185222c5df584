"""Writing output files without losing anyone's data: the one rule every writing command follows.

- `claim(path, mark)`: a command replaces only a file it created. An existing file is replaced
  when it carries the writer's `mark` (a string every file of that writer holds in its first
  or last 64 KiB: the report's generator tag, an export format's own key); any other file — a README.md,
  an evaluation's results.md, a metrics.jsonl — is refused with `OutputExists` (a `ValueError`,
  so the CLI prints one `error:` line naming it and exits 2) unless the user passes `--force`.
- `write_output(path, data, mark=...)`: `claim`, then write atomically (a temporary file beside
  it, renamed over it), so a full disk or a kill mid-write leaves the old file whole.
- `check_out_dir(path)`: an output directory that cannot be written is refused before the work
  (a long evaluation), not after it.
- `writing(path)`: a context manager around any save (safetensors, torch.save, save_pretrained)
  that turns its OS failure into an `OSError` naming `path` and the free space left, instead of
  a library's `SafetensorError ... No space left on device` or torch's
  `[enforce fail at inline_container.cc]`, which name no file.

Pure Python, no heavy imports.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HEAD_BYTES = 64 * 1024

# What a library's write failure says when the OS refused it (safetensors' Rust IoError, torch's
# zip writer): the text is all these errors carry, there is no errno to read.
_OS_HINTS = (
    ("no space left", errno.ENOSPC),
    ("storagefull", errno.ENOSPC),
    ("disk quota", errno.EDQUOT),
    ("permission denied", errno.EACCES),
    ("read-only file system", errno.EROFS),
    ("file write failed", errno.EIO),
    ("unexpected pos", errno.EIO),  # torch's zip writer (inline_container.cc) after a short write
    ("pytorchstreamwriter", errno.EIO),
    ("input/output error", errno.EIO),
)


class OutputExists(ValueError):
    """`path` exists and was not written by the command about to replace it."""

    def __init__(self, path: Path, writer: str, hint: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: exists and was not written by {writer}; not replacing it ({hint})"
        )


def ours(path: Path, mark: str) -> bool:
    """Does the existing file `path` carry `mark` in its first or last 64 KiB?"""
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
            f.seek(max(0, f.seek(0, os.SEEK_END) - HEAD_BYTES))
            tail = f.read(HEAD_BYTES)
    except OSError:
        return False
    return mark.encode("utf-8") in head or mark.encode("utf-8") in tail


def claim(
    path: str | Path,
    mark: str,
    *,
    writer: str,
    force: bool = False,
    hint: str = "choose another --out, or pass --force to replace it",
) -> Path:
    """Refuse to replace `path` unless it is absent, was written by `writer` (carries `mark`) or
    `force` is set; an empty file is free. A directory in the way is always refused. Returns
    `path` as a Path."""
    path = Path(path)
    if path.is_dir():
        raise OutputExists(path, writer, "it is a directory; choose another --out")
    if path.exists() and not force and path.stat().st_size and not ours(path, mark):
        raise OutputExists(path, writer, hint)  # (an empty file holds nothing to lose)
    return path


def check_out_dir(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output directory that cannot be one: an existing file, a path
    below a file, or below a directory this process may not write. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{option} is a file, not a directory", str(path))
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{option} lies below a file", str(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{option} is not writable", str(parent))
    return path


def _free(path: Path) -> str:
    for p in (path, *path.parents):
        try:
            free = shutil.disk_usage(p).free
        except OSError:
            continue
        for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
            if free < 1024 or unit == "TiB":
                return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
            free /= 1024
    return "unknown"


def os_error(path: str | Path, err: BaseException) -> OSError:
    """`err` (an OSError, or a library's error wrapping one) as an OSError naming `path`."""
    path = Path(path)
    code = getattr(err, "errno", None)
    text = " ".join(str(err).split())
    if code is None:
        low = text.lower()
        code = next((c for hint, c in _OS_HINTS if hint in low), errno.EIO)
    guessed = getattr(err, "errno", None) is None and code == errno.EIO
    reason = "the write was cut short" if guessed else os.strerror(code)
    if code in (errno.ENOSPC, errno.EDQUOT):
        reason += f" (free space there: {_free(path)}; free some and rerun)"
    elif code == errno.EIO:
        reason += f" (free space there: {_free(path)}; a full disk is the usual cause)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason += " (choose a writable location)"
    if guessed and text:
        reason += f"; the writer said: {text[:200]}"
    return OSError(code, f"cannot write: {reason}", str(path))


def _mode(path: Path) -> int:
    """The replaced file's mode, or what a plain `open(path, "w")` would give (mkstemp's is 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def is_os_failure(err: BaseException) -> bool:
    """Is `err`, raised by a write, an OS refusal (OSError, or a library error saying so)?"""
    if isinstance(err, OSError):
        return True
    low = str(err).lower()
    return any(hint in low for hint, _ in _OS_HINTS)


# Texts only a failed write produces (not "permission denied", which an HTTP error may also say).
_WRITE_ONLY = ("no space left", "storagefull", "disk quota", "read-only file system")
_WRITE_ONLY += ("file write failed", "unexpected pos", "pytorchstreamwriter")


def is_write_failure(err: BaseException) -> bool:
    """Is `err`, raised anywhere, a library's report of a failed write (for the CLI's boundary)?"""
    low = str(err).lower()
    return not isinstance(err, OSError) and any(hint in low for hint in _WRITE_ONLY)


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Re-raise an OS failure inside the block as an `OSError` naming `path` (module docstring).
    Other errors pass through unchanged."""
    try:
        yield
    except Exception as err:
        if not is_os_failure(err):
            raise
        raise os_error(path, err) from err


def write_output(
    path: str | Path,
    data: str | bytes,
    *,
    mark: str,
    writer: str,
    force: bool = False,
    hint: str = "choose another --out, or pass --force to replace it",
) -> Path:
    """`claim(path)`, then write `data` atomically. Text is written as UTF-8."""
    path = claim(path, mark, writer=writer, force=force, hint=hint)
    body = data.encode("utf-8") if isinstance(data, str) else data
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.chmod(tmp, _mode(path))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path
