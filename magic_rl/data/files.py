"""Reading data files with errors that say where: (line or record number, row) pairs.

Every reader raises `DatasetError` (a `ValueError`) naming the file, the 1-based line (a CSV's header
is line 1) or record, and the field, so a bad row in a 20,000-line file is found at once. JSON lines
are the project's exchange format (seeds, pools, replay buffers, metrics, judge caches) and all of
them are read by `read_jsonl_rows`; the public benchmark files add CSV, JSON arrays and parquet.

Pure Python; pyarrow is imported only to read parquet.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# WildGuardTest responses and DAN templates exceed the csv module's default 128 KiB field limit.
csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))


# Python's JSON parser recurses once per nesting level; a line nested 100,000 deep exhausts the stack.
TOO_DEEP = "JSON nested too deeply to read (thousands of levels of [ or {); no data file nests so"


class DatasetError(ValueError):
    """A benchmark file or one of its rows is malformed. `line` is 1-based (CSV header = line 1);
    `record` is the 1-based element of a JSON array or parquet table when lines do not apply."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.record, self.field = str(path), line, record, field
        where = self.path
        if line is not None:
            where += f":{line}"
        if record is not None:
            where += f": record {record}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")


def decode_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DatasetError(path, f"not UTF-8 ({e.reason})", line=line) from None


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "no such file")
    return path


def read_csv_rows(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """Yield (line, row) for a CSV with a header; `line` is where the record starts."""
    path = existing_file(path)
    reader = csv.reader(decode_text(path).splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(path, "empty file, expected a header", line=1) from None
    for name in required:
        if name not in header:
            raise DatasetError(path, f"missing column (header has {header})", line=1, field=name)
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DatasetError(path, f"bad CSV: {e}", line=line) from None
        if not values:
            continue
        if len(values) != len(header):
            raise DatasetError(path, f"{len(values)} fields, header has {len(header)}", line=line)
        yield line, dict(zip(header, values, strict=True))


def read_jsonl_rows(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line, object) for each non-blank line of a JSON-lines file, streaming.

    Lines end at "\n" only: a JSON string may hold U+2028 and other characters that
    `str.splitlines` would break on. A UTF-8 byte-order mark on the first line is skipped.
    """
    path = existing_file(path)
    with path.open("rb") as f:
        for line, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DatasetError(path, f"not UTF-8 ({e.reason})", line=line) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                message = f"invalid JSON ({e.msg}, column {e.colno})"
                raise DatasetError(path, message, line=line) from None
            except RecursionError:
                raise DatasetError(path, TOO_DEEP, line=line) from None
            if not isinstance(obj, dict):
                message = f"expected a JSON object, got {type(obj).__name__}"
                raise DatasetError(path, message, line=line)
            yield line, obj


def read_json(path: str | Path) -> Any:
    path = existing_file(path)
    try:
        return json.loads(decode_text(path))
    except json.JSONDecodeError as e:
        message = f"invalid JSON ({e.msg}, column {e.colno})"
        raise DatasetError(path, message, line=e.lineno) from None
    except RecursionError:
        raise DatasetError(path, TOO_DEEP) from None


def read_parquet_rows(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (record, row) for a parquet table; nested structs and lists stay Python objects."""
    import pyarrow.parquet as pq  # lazily: only parquet needs it

    path = existing_file(path)
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several unrelated types for a corrupt file
        raise DatasetError(path, f"unreadable parquet: {e}") from None
    yield from enumerate(rows, start=1)


def table_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """Rows of a table-like file by suffix; JSON arrays count records, not lines."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from read_csv_rows(path)
    elif suffix == ".jsonl":
        yield from read_jsonl_rows(path)
    elif suffix == ".parquet":
        yield from read_parquet_rows(path)
    elif suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DatasetError(path, f"expected a JSON array, got {type(data).__name__}")
        for i, obj in enumerate(data, start=1):
            if not isinstance(obj, dict):
                raise DatasetError(path, f"expected an object, got {type(obj).__name__}", record=i)
            yield i, obj
    else:
        raise DatasetError(path, f"unknown format {suffix!r} (csv, jsonl, json, parquet)")


@dataclass(frozen=True)
class Where:
    """Where a row came from, so field errors can name it."""

    path: Path
    line: int | None = None
    record: int | None = None

    def error(self, name: str, message: str) -> DatasetError:
        return DatasetError(self.path, message, line=self.line, record=self.record, field=name)

    def text(self, row: Mapping, name: str, *, required: bool = True) -> str:
        if required and self.path.suffix.lower() == ".csv" and name not in row:
            # Every CSV row has every header column, so the fault is the header's.
            raise DatasetError(
                self.path, f"missing column (header has {list(row)})", line=1, field=name
            )
        value = get_path(row, name)
        nan = isinstance(value, float) and math.isnan(value)
        if value is None or nan:
            if required:  # a NaN is there, not missing: say what the file holds
                raise self.error(name, "NaN, not a value" if nan else "missing")
            return ""
        if not isinstance(value, str | int | float):
            raise self.error(name, f"expected text, got {type(value).__name__}")
        value = str(value)
        if required and not value.strip():
            raise self.error(name, "empty")
        return value

    def choice(self, row: Mapping, name: str, allowed: Mapping[str, Any]) -> Any:
        value = self.text(row, name, required=False).strip()
        if value not in allowed:
            raise self.error(name, f"value {value!r} not in {sorted(allowed)}")
        return allowed[value]


def get_path(row: Any, name: str) -> Any:
    """`a.b.0.c` walks nested dicts and lists (parquet structs, chat-message lists)."""
    if isinstance(row, Mapping) and name in row:
        return row[name]
    value = row
    for part in name.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def located_rows(path: Path) -> Iterator[tuple[Where, dict]]:
    """Rows with their location: a line for CSV/JSONL, a record number for JSON arrays/parquet."""
    by_record = path.suffix.lower() in (".json", ".parquet")
    for n, row in table_rows(path):
        yield (Where(path, record=n) if by_record else Where(path, line=n)), row
