"""Spreadsheet exports (CSV and .xlsx) that stream, and that never turn stored text into a formula.

Reporters' text is untrusted: a cell that starts with `=`, `+`, `-`, `@`, a tab or a line break is read
by Excel, WPS and LibreOffice as a formula (`=HYPERLINK(…)`, `+cmd|' /C calc'!A0`, `@SUM(…)`). Every
export writes through here: in CSV such text is prefixed with `'`, the mark spreadsheets take as "this is
text"; in .xlsx it is written as a string cell marked with a quote prefix, so it shows unchanged and
stays text. Rows are consumed as they come, so an export of a county's year never sits in memory.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

Cell = str | int | float | bool | datetime | date | None

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_BOM = "\ufeff"  # Excel opens UTF-8 CSV as UTF-8 only with it


class ExportFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


def starts_like_a_formula(text: str) -> bool:
    return text.startswith(FORMULA_TRIGGERS)


def csv_safe(value: Cell) -> str:
    """The text a CSV cell holds: formula-like text behind `'`, times in RFC 3339, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and starts_like_a_formula(text):
        return "'" + text
    return text


@dataclass(frozen=True)
class Sheet:
    """One sheet (or the one CSV file): a title, Chinese column headers, and rows as they come."""

    title: str
    headers: Sequence[str]
    rows: AsyncIterable[Sequence[Cell]]


async def csv_chunks(sheet: Sheet, *, rows_per_chunk: int = 500) -> AsyncIterator[bytes]:
    """The sheet as UTF-8 CSV (with a BOM for Excel), a few hundred rows a chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(_BOM)
    writer.writerow([csv_safe(h) for h in sheet.headers])
    count = 0
    async for row in sheet.rows:
        writer.writerow([csv_safe(cell) for cell in row])
        count += 1
        if count % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def write_xlsx(path: Path, sheets: Sequence[Sheet]) -> None:
    """Write the sheets to an .xlsx file in constant memory (xlsxwriter spills rows to temporary files)."""
    import xlsxwriter  # type: ignore[import-untyped]  # only here: it costs every service's start otherwise

    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "tmpdir": str(path.parent), "remove_timezone": True}
    )
    try:
        header_format = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        text_format = workbook.add_format({"quote_prefix": True})
        time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
        for sheet in sheets:
            worksheet = workbook.add_worksheet(_sheet_title(sheet.title))
            for column, header in enumerate(sheet.headers):
                worksheet.write_string(0, column, header, header_format)
                worksheet.set_column(column, column, max(10, min(40, len(header) * 3)))
            worksheet.freeze_panes(1, 0)
            row_number = 1
            async for row in sheet.rows:
                for column, cell in enumerate(row):
                    if cell is None:
                        continue
                    if isinstance(cell, bool):
                        worksheet.write_string(row_number, column, "是" if cell else "否")
                    elif isinstance(cell, int | float):
                        worksheet.write_number(row_number, column, cell)
                    elif isinstance(cell, datetime):
                        worksheet.write_datetime(row_number, column, cell, time_format)
                    elif isinstance(cell, date):
                        worksheet.write_datetime(row_number, column, cell, date_format)
                    elif starts_like_a_formula(cell):
                        # Always a string cell (never write(), which reads "=…" as a formula), marked as text.
                        worksheet.write_string(row_number, column, cell, text_format)
                    else:
                        worksheet.write_string(row_number, column, cell)
                row_number += 1
    finally:
        workbook.close()


async def xlsx_chunks(
    sheets: Sequence[Sheet], folder: Path, *, chunk_bytes: int = 1 << 16
) -> AsyncIterator[bytes]:
    """The sheets as an .xlsx file, built in a temporary file under `folder` and streamed from it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix="export-") as scratch:
        path = Path(scratch) / "export.xlsx"
        await write_xlsx(path, sheets)
        with path.open("rb") as built:
            while chunk := built.read(chunk_bytes):
                yield chunk


def attachment(filename: str) -> dict[str, str]:
    """Content-Disposition for a download with a Chinese file name (RFC 6266 / 5987)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    }


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip("'") or "Sheet"
    return cleaned[:31]  # Excel's limit
