"""Fast JSON responses (orjson: dates as ISO text) and CSV streaming with a header row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse


class JSONResponse(Response):
    """application/json encoded by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def csv_text(value: Any) -> str:
    """A value as CSV text: empty for null, the JSON spelling for numbers, ISO for dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return orjson.dumps(value).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def csv_lines(
    columns: Sequence[str], rows: Iterable[dict[str, Any]], batch: int = 500
) -> Iterator[str]:
    """The header, then the rows, a few hundred lines per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, start=1):
        writer.writerow([csv_text(row[c]) for c in columns])
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def wants_csv(accept: str | None) -> bool:
    """Whether the Accept header asks for CSV (before JSON, if both are named)."""
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in kinds and (
        "application/json" not in kinds or kinds.index("text/csv") < kinds.index("application/json")
    )


def csv_response(
    columns: Sequence[str], rows: Iterable[dict[str, Any]], headers: dict[str, str]
) -> StreamingResponse:
    """Stream `rows` as text/csv."""
    return StreamingResponse(
        csv_lines(columns, rows), media_type="text/csv; charset=utf-8", headers=headers
    )
