"""`resume.replace_dir`, the rename behind every checkpoint and state save: a kill between its two
renames leaves the previous folder whole (moved aside, never deleted first), and `repair_state`
puts a moved-aside state back."""

from __future__ import annotations

from pathlib import Path

import pytest

from magic_rl.loop.resume import repair_state, replace_dir


def _folder(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "meta.json").write_text(text)
    return path


def test_replace_dir_puts_the_new_folder_in_place_and_drops_the_old(tmp_path):
    final = _folder(tmp_path / "state", "old")
    replace_dir(_folder(tmp_path / "tmp", "new"), final, tmp_path / "state.old")
    assert (final / "meta.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_a_kill_between_the_renames_keeps_the_previous_state_whole(tmp_path, monkeypatch):
    final = _folder(tmp_path / "state", "saved at step 4")
    tmp = _folder(tmp_path / "tmp", "half of step 6")
    rename = Path.rename

    def killed(self, target):
        if self == tmp:  # the second rename never happens
            raise KeyboardInterrupt("killed")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(tmp, final, tmp_path / "state.old")
    monkeypatch.setattr(Path, "rename", rename)
    assert not final.exists()
    assert (tmp_path / "state.old" / "meta.json").read_text() == "saved at step 4"
    repair_state(tmp_path)  # what resume runs first
    assert (final / "meta.json").read_text() == "saved at step 4"
