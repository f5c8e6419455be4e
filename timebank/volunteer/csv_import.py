"""Service records from a spreadsheet: CSV, UTF-8 with or without BOM, a header row,
Chinese or English column names. Parsing only; the rules are ``recording.record_many``'s.

Parsing is CPU work proportional to the file: the HTTP route runs it in a worker
thread, and bounds the file (``max_bytes``, ``max_rows``: a 413 beyond them). The
answer of a large import is encoded here too (``import_answer``), in a worker thread.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from timebank.core.problems import BadRequest
from timebank.volunteer.records import ImportTooLarge, RecordIn

# Accepted header names per field (compared after trimming, case-insensitively).
COLUMNS: dict[str, tuple[str, ...]] = {
    "member_id": ("member_id", "成员id", "志愿者id"),
    "member_ref": ("member_ref", "member_external_ref", "志愿者编号", "志愿者证号", "居民编号"),
    "organisation_id": ("organisation_id", "organization_id", "组织id", "志愿服务组织id"),
    "activity": ("activity", "活动名称", "服务项目"),
    "category": ("category", "服务类别", "类别"),
    "place": ("place", "服务地点", "地点"),
    "started_at": ("started_at", "开始时间"),
    "ended_at": ("ended_at", "结束时间"),
    "beneficiary": ("beneficiary", "服务对象"),
    "content": ("content", "服务内容"),
    "external_ref": ("external_ref", "记录编号", "外部编号"),
}
REQUIRED = ("activity", "category", "place", "started_at", "ended_at")
LOCAL_FORMATS = (
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
)
_ALIASES = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}


def parse_time(value: str, tz: ZoneInfo) -> datetime:
    """RFC 3339 with an offset, or a local time of the community (e.g. 2026-11-01 09:30)."""
    value = value.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
        for fmt in LOCAL_FORMATS:
            try:
                moment = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        if moment is None:
            raise ValueError(f"{value!r} is not a time (use 2026-11-01 09:30 or RFC 3339)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _too_large(what: str, max_rows: int | None, max_bytes: int | None) -> ImportTooLarge:
    limits = " and ".join(
        x for x in (max_rows and f"{max_rows} records", max_bytes and f"{max_bytes} bytes") if x
    )
    return ImportTooLarge(f"{what}; an import takes at most {limits}: split the file")


def _header(reader: Any) -> list[str | None]:
    """The field of each column (None: a column we do not read); a 400 if one is missing."""
    try:
        header = next(reader)
    except StopIteration:
        raise BadRequest("the file is empty; the first row names the columns") from None
    except csv.Error as exc:
        raise BadRequest(f"line 1 is not CSV: {exc}") from None
    fields = [_ALIASES.get(h.strip().lower()) for h in header]
    missing = [f for f in REQUIRED if f not in fields]
    if "member_id" not in fields and "member_ref" not in fields:
        missing.append("member_id or member_ref")
    if missing:
        raise BadRequest(f"columns missing: {', '.join(missing)} (see docs/api.md for accepted names)")
    return fields


def _record(row: dict[str, str], tz: ZoneInfo, line: int) -> RecordIn:
    """One row's record; a ValueError for a time or an id that cannot be read."""
    return RecordIn(
        activity=row.get("activity", ""),
        category=row.get("category", ""),
        place=row.get("place", ""),
        started_at=parse_time(row.get("started_at", ""), tz),
        ended_at=parse_time(row.get("ended_at", ""), tz),
        member_id=uuid.UUID(row["member_id"]) if row.get("member_id") else None,
        member_ref=row.get("member_ref") or None,
        organisation_id=uuid.UUID(row["organisation_id"]) if row.get("organisation_id") else None,
        beneficiary=row.get("beneficiary") or None,
        content=row.get("content") or None,
        external_ref=row.get("external_ref") or None,
        line=line,
        source="import",  # back-filled (补录): no check-in witnessed it
    )


def _lines(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each non-blank row after the header."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a cell longer than the csv module's field limit
            raise BadRequest(f"line {reader.line_num} is not CSV: {exc}") from None
        if any(c.strip() for c in cells):  # blank lines in spreadsheets are common and mean nothing
            yield reader.line_num, cells


def parse_csv(
    data: bytes, tz: ZoneInfo, *, max_rows: int | None = None, max_bytes: int | None = None
) -> tuple[list[RecordIn], list[dict[str, Any]]]:
    """(rows to record, rows that could not even be read, with their line and reason).

    A file over ``max_bytes`` or with more than ``max_rows`` records (blank lines do
    not count) is refused whole with ``ImportTooLarge`` (413): nothing is recorded.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise _too_large(f"the file has {len(data)} bytes", max_rows, max_bytes)
    try:
        body = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the file is not UTF-8 text (save the spreadsheet as CSV UTF-8)") from None
    reader = csv.reader(io.StringIO(body, newline=""))
    fields = _header(reader)
    rows: list[RecordIn] = []
    unreadable: list[dict[str, Any]] = []
    for line, cells in _lines(reader):
        if max_rows is not None and len(rows) + len(unreadable) >= max_rows:
            raise _too_large(f"the file has more than {max_rows} records", max_rows, max_bytes)
        if len(cells) > len(fields):
            unreadable.append({"line": line, "reason": f"{len(cells)} cells, the header has {len(fields)}"})
            continue
        try:
            rows.append(
                _record(
                    {f: c.strip() for f, c in zip(fields, cells, strict=False) if f is not None}, tz, line
                )
            )
        except ValueError as exc:
            unreadable.append(
                {"line": line, "reason": str(exc) if "time" in str(exc) else f"not an id: {exc}"}
            )
    return rows, unreadable


def import_answer(accepted: list[dict[str, Any]], rejected: list[dict[str, Any]], done: list[Any]) -> bytes:
    """An import's answer as JSON, encoded a slice at a time (one encoder call holds the
    interpreter for its whole length, and 20,000 records are megabytes). Empties
    ``accepted`` and ``done`` as it goes, so that they are freed in this thread."""
    encoder = msgspec.json.Encoder()
    parts = [b'{"accepted":[']
    for start in range(0, len(accepted), 1000):
        if start:
            parts.append(b",")
        parts.append(encoder.encode(accepted[start : start + 1000])[1:-1])
    parts += [b'],"rejected":', encoder.encode(rejected), b"}"]
    accepted.clear()
    done.clear()
    return b"".join(parts)
