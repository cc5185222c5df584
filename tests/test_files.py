"""magic_rl.data.files: every JSON-lines file of the project is read by one reader whose errors
name the file and line."""

from __future__ import annotations

import json

import pytest

from magic_rl.data.files import DatasetError, read_jsonl_rows

BAD = [
    # (content, line, message)
    (b'{"a": 1}\n{"a": \n', 2, "invalid JSON"),
    (b'{"a": 1}\n\n[1, 2]\n', 3, "expected a JSON object, got list"),
    (b'{"a": 1}\n{"a": "\xff"}\n', 2, "not UTF-8"),
    (b"3\n", 1, "expected a JSON object, got int"),
]


@pytest.mark.parametrize(("content", "line", "message"), BAD)
def test_bad_lines_name_the_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as err:
        list(read_jsonl_rows(path))
    assert (err.value.path, err.value.line) == (str(path), line)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_line_numbers_count_blank_lines_and_a_bom_is_skipped(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \n{"a": 2}\r\n{"a": 3}')
    assert list(read_jsonl_rows(path)) == [(1, {"a": 1}), (4, {"a": 2}), (5, {"a": 3})]


def test_unicode_line_separators_inside_strings_do_not_split_a_row(tmp_path):
    row = {"text": "one\u2028two\u2029three\x85four\x0cfive"}
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert list(read_jsonl_rows(path)) == [(1, row)]


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        list(read_jsonl_rows(tmp_path / "absent.jsonl"))
