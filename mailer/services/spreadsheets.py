"""CSV exports: cells that a spreadsheet opens as text, and text streamed in chunks."""

import csv
import io

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """Make a text cell inert in spreadsheets: a leading quote stops it being read as a formula.
    Valid e-mail addresses can start with these too (`=1+2-x@example.com`)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class CsvChunks:
    """A CSV writer whose text is taken chunk by chunk, for an export streamed batch by batch
    without holding the whole file in memory."""

    def __init__(self):
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def writerow(self, row) -> None:
        self._writer.writerow(row)

    def take(self) -> str:
        """The text written since the last call."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
