"""Spreadsheets of the import page: an Excel workbook (.xlsx) read as the CSV the importer
parses (``csv_import.parse_csv``: one parser, one set of column names, one set of
limits), the templates to fill in, and the rejected rows with their reasons.

An uploaded file travels between the preview and the import inside the page itself
(``pack`` / ``unpack``: compressed, with a checksum), so nothing of it rests on the
server and any replica can import what another one previewed.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Any

from timebank.core.problems import BadRequest
from timebank.volunteer.csv_import import COLUMNS
from timebank.volunteer.records import ImportTooLarge

MAX_COLUMNS = 40  # cells right of these are not read (the importer knows 11 columns)
# An .xlsx is a zip of XML: refuse one that unpacks to far more than any real sheet of
# ``max_bytes`` of CSV would (a "zip bomb"), before reading any of it.
UNPACKED_PER_CSV_BYTE = 30
XLSX_MAGIC = b"PK\x03\x04"

# The template's columns: the importer's first Chinese name of each field a recorder fills
# in (the organisation is the recorder's own; a volunteer by member id or volunteer number).
TEMPLATE_FIELDS = (
    "member_id",
    "member_ref",
    "activity",
    "category",
    "place",
    "started_at",
    "ended_at",
    "beneficiary",
    "content",
    "external_ref",
)


def chinese_name(field: str) -> str:
    """The importer's first Chinese name of a field (as people write it: 成员ID, not 成员id)."""
    return next(name for name in COLUMNS[field] if not name.isascii()).replace("id", "ID")


TEMPLATE_HEADERS = [chinese_name(f) for f in TEMPLATE_FIELDS]


def is_xlsx(filename: str, data: bytes) -> bool:
    return filename.lower().endswith(".xlsx") or data[:4] == XLSX_MAGIC


def _cell(value: Any) -> str:
    """A cell as the text the CSV importer reads (times as local times of the community)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if value.second else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a volunteer number typed as a number: 1024, not 1024.0
    return str(value)


def xlsx_as_csv(data: bytes, *, max_rows: int, max_bytes: int) -> bytes:
    """The first sheet of a workbook as UTF-8 CSV; the importer's limits apply to it (more
    than ``max_rows`` records, or more than ``max_bytes`` of CSV: ``ImportTooLarge``)."""
    import openpyxl  # only the import page needs it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise BadRequest("the file is not an Excel workbook (.xlsx); save it as .xlsx or CSV UTF-8") from None
    if unpacked > max_bytes * UNPACKED_PER_CSV_BYTE:
        raise ImportTooLarge(f"the workbook unpacks to {unpacked} bytes: split the file")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged or foreign file
        raise BadRequest("the file is not an Excel workbook (.xlsx); save it as .xlsx or CSV UTF-8") from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    records = -1  # the header is not a record
    try:
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            cells = [_cell(v) for v in row]
            while cells and not cells[-1].strip():
                cells.pop()
            if any(c.strip() for c in cells):
                records += 1
                if records > max_rows:
                    raise ImportTooLarge(
                        f"the file has more than {max_rows} records; an import takes at most "
                        f"{max_rows} records: split the file"
                    )
            writer.writerow(cells)
            if out.tell() > max_bytes:
                raise ImportTooLarge(f"the sheet is more than {max_bytes} bytes as CSV: split the file")
    except (ImportTooLarge, BadRequest):
        raise
    except Exception:
        raise BadRequest("the workbook could not be read; save it again as .xlsx or CSV UTF-8") from None
    finally:
        book.close()
    return out.getvalue().encode()


# --- the templates --------------------------------------------------------------------------


def _example(category: str, day: date) -> list[Any]:
    return [
        "",
        "V0001",
        "陪老人聊天",
        category,
        "日间照料中心",
        datetime.combine(day, time(9, 0)),
        datetime.combine(day, time(11, 0)),
        "李爷爷",
        "读报、聊天",
        "",
    ]


def template_csv(category: str, day: date) -> bytes:
    """The CSV template: the Chinese headers and one example row (with a BOM, so that
    Excel opens it as UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TEMPLATE_HEADERS)
    writer.writerow([_cell(v) for v in _example(category, day)])
    return out.getvalue().encode("utf-8-sig")


def template_xlsx(categories: Sequence[str], day: date) -> bytes:
    """The Excel template: the same headers and example row; the category column offers
    the community's categories, the time columns are times."""
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "服务记录"
    sheet.append(TEMPLATE_HEADERS)
    sheet.append(_example(categories[0], day))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column in ("F", "G"):
        sheet[f"{column}2"].number_format = "yyyy-mm-dd hh:mm"
    for i, width in enumerate((38, 14, 20, 14, 20, 18, 18, 14, 24, 16)):
        sheet.column_dimensions[chr(ord("A") + i)].width = width
    listed = ",".join(categories)
    if len(listed) <= 250 and '"' not in listed:  # Excel's limit for a list typed in a rule
        rule = DataValidation(type="list", formula1=f'"{listed}"', allow_blank=True)
        sheet.add_data_validation(rule)
        rule.add("D2:D20001")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- the rejected rows ------------------------------------------------------------------------


def rejected_rows_csv(
    data: bytes, rejected: Iterable[dict[str, Any]], line_header: str, reason_header: str
) -> bytes:
    """The rejected rows of an imported CSV, each as it was with its line and reason added
    at the end (the importer ignores those columns: fix the rows and import the file)."""
    why: dict[int, list[str]] = {}
    for r in rejected:
        why.setdefault(int(r["line"]), []).append(str(r["reason"]))
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = next(reader, [])
    width = len(header)
    writer.writerow([*header, line_header, reason_header])
    while why:
        try:
            cells = next(reader)
        except StopIteration:
            break
        reasons = why.pop(reader.line_num, None)
        if reasons is not None:
            cells = cells + [""] * (width - len(cells))
            writer.writerow([*cells, reader.line_num, "; ".join(reasons)])
    return out.getvalue().encode("utf-8-sig")


# --- the file inside the page ---------------------------------------------------------------


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def pack(data: bytes) -> str:
    """A file as a form field's text: compressed (a CSV shrinks several times), base64."""
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def unpack(text: str, max_bytes: int) -> bytes:
    """The file of ``pack``; a 400 if it is damaged, a 413 past ``max_bytes`` unpacked
    (checked while unpacking: a small field cannot unpack to gigabytes)."""
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, max_bytes + 1)
    except (binascii.Error, UnicodeEncodeError, ValueError, zlib.error):
        raise BadRequest("the uploaded file was damaged on its way back; upload it again") from None
    if len(data) > max_bytes:
        raise ImportTooLarge(f"the file is more than {max_bytes} bytes: split the file")
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise BadRequest("the uploaded file was damaged on its way back; upload it again")
    return data
