"""A full disk, a refused permission and other OS failures are one `error:` line naming the path
(exit 2), never `internal error: SafetensorError ... please report it` or torch's bare
`[enforce fail at inline_container.cc]`; and the file being replaced is kept whole.

The disk cannot be filled here (no tmpfs, tests run as root so modes do not refuse): the writes are
made to fail as the OS makes them fail — OSError(ENOSPC) from a write, the libraries' own error
texts from safetensors and torch, PermissionError from creating a file.

Run: `python -m pytest -q tests/test_os_errors.py` (a minute: one tiny training run).
"""

from __future__ import annotations

import errno
import os
import tempfile

import pytest
from cli_errors import one_error
from test_report import make_run
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.data.outputs import write_output, writing

runner = CliRunner()
TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 1088 vs 982"
SAFETENSORS_FULL = (
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left '
    'on device" })'
)


def _safetensor_error():
    from safetensors import SafetensorError

    return SafetensorError(SAFETENSORS_FULL)


@pytest.mark.parametrize(
    ("raised", "code", "says"),
    [
        (lambda: RuntimeError(TORCH_FULL), errno.EIO, "cut short"),
        (_safetensor_error, errno.ENOSPC, "No space left on device"),
        (lambda: OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC, "free space"),
        (lambda: PermissionError(errno.EACCES, "Permission denied"), errno.EACCES, "writable"),
    ],
)
def test_writing_names_the_path_of_a_failed_save(tmp_path, raised, code, says):
    target = tmp_path / "state.tmp" / "optim.pt"
    with pytest.raises(OSError) as info, writing(target):
        raise raised()
    assert info.value.filename == str(target) and info.value.errno == code
    assert says in str(info.value)


def test_writing_lets_other_errors_through(tmp_path):
    with pytest.raises(KeyError), writing(tmp_path):
        raise KeyError("a bug stays a bug")


class _FullDisk:
    """os.fdopen's file whose write fails as a full disk does."""

    def __init__(self, fd: int, *args, **kwargs) -> None:
        os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_the_file_being_replaced(tmp_path, monkeypatch):
    path = tmp_path / "out.md"
    write_output(path, "MARK old\n", mark="MARK", writer="w")
    monkeypatch.setattr(os, "fdopen", _FullDisk)
    with pytest.raises(OSError, match="No space left on device") as info:
        write_output(path, "MARK new\n", mark="MARK", writer="w")
    assert info.value.filename == str(path)
    assert path.read_text() == "MARK old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]  # the temporary is removed


def test_report_on_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    monkeypatch.setattr(os, "fdopen", _FullDisk)
    line = one_error(runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html")]))
    assert str(tmp_path / "r.html") in line and "No space left on device" in line, line


def test_report_into_a_read_only_directory_names_the_file(tmp_path, monkeypatch):
    run = make_run(tmp_path)

    def refused(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, ".tmpfile"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)  # root ignores modes: refuse as a mode would
    line = one_error(runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html")]))
    assert f"{tmp_path / 'r.html'}: cannot write: Permission denied" in line, line


def test_a_library_write_failure_nobody_named_is_still_a_user_error(monkeypatch):
    import magic_rl.cli.world as world

    def full(*a, **k):
        raise _safetensor_error()

    monkeypatch.setattr(world, "_load", full)
    line = one_error(runner.invoke(app, ["validate", "sandbox"]))
    assert "No space left on device" in line and "disk is full" in line


def test_other_errors_that_mention_permission_stay_internal(monkeypatch):
    import magic_rl.cli.world as world

    def bug(*a, **k):
        raise RuntimeError("403: Permission denied by the endpoint")  # not a write at all

    monkeypatch.setattr(world, "_load", bug)
    result = runner.invoke(app, ["validate", "sandbox"])
    assert result.exit_code == 1 and "internal error: RuntimeError" in result.output


@pytest.mark.parametrize(
    ("where", "names"),
    [("checkpoint", "checkpoints/.tmp-step-000000/"), ("state", "state.tmp/optim.pt")],
)
def test_train_on_a_full_disk_names_the_file_it_was_saving(
    tiny_overrides, tmp_path, monkeypatch, where, names
):
    if where == "checkpoint":  # the step-0 checkpoint: transformers' safetensors save
        import transformers.modeling_utils as mu

        def full(*a, **k):
            raise _safetensor_error()

        monkeypatch.setattr(mu, "safe_save_file", full)
    else:  # the optimiser state after the last step: torch.save's zip writer
        import torch

        def full(*a, **k):
            raise RuntimeError(TORCH_FULL)

        monkeypatch.setattr(torch, "save", full)
    argv = [
        "train",
        *tiny_overrides,
        "train.steps=1",
        "train.seeds_per_step=2",
        f"output_dir={tmp_path}",
        "name=full",
    ]
    line = one_error(runner.invoke(app, argv))
    assert names in line and str(tmp_path / "full") in line, line
