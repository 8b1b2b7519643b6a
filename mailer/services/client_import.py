"""Importing clients from a CSV file. No request objects here.

A small file is imported inside the request. A larger one is saved under
`instance/imports/` and imported by the worker (`mailer.jobs.client_import`), which commits
batch by batch and reports its progress in a Redis hash that the status page reads.
"""

import csv
import io
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from redis.exceptions import RedisError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from mailer.extensions import db, rq
from mailer.i18n import in_language_of
from mailer.i18n import lazy_text as _l
from mailer.models import Client, User, utcnow
from mailer.services.clients import ClientError, clean_comment, clean_email, clean_full_name
from mailer.services.stats import clear_stats_cache_after_commit

log = logging.getLogger(__name__)

ON_EXISTING_SKIP = "skip"
ON_EXISTING_UPDATE = "update"
ON_EXISTING_CHOICES = [
    (ON_EXISTING_SKIP, _l("Skip the row and keep the client as it is")),
    (ON_EXISTING_UPDATE, _l("Update the client's full name and comment from the file")),
]

# Files with more data rows than this are imported by the worker.
SYNC_MAX_ROWS = 2000
# Rows looked up and written together; the worker commits and reports progress after each batch.
BATCH_SIZE = 500
# Invalid rows listed on the result page; all of them are counted.
MAX_LISTED_PROBLEMS = 1000
# How long the status page of a background import stays available.
STATUS_TTL_SECONDS = 7 * 24 * 3600
JOB_TIMEOUT_SECONDS = 3600

# Accepted names of the header's columns, compared lower-cased with "_" read as a space.
HEADER_NAMES = {
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "full name": "full_name",
    "fullname": "full_name",
    "name": "full_name",
    "comment": "comment",
    "comments": "comment",
    "note": "comment",
    "notes": "comment",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; the message is for the person."""


@dataclass
class RowProblem:
    line: int
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    invalid: int = 0
    # Rows repeating an e-mail of an earlier row of the file: only the first one is imported.
    duplicates: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def add_problem(self, line: int, reason: str, duplicate: bool = False) -> None:
        if duplicate:
            self.duplicates += 1
        else:
            self.invalid += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(RowProblem(line, reason))

    @property
    def more_problems(self) -> int:
        return self.invalid + self.duplicates - len(self.problems)


# Reading the file -----------------------------------------------------------------------------


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(
            _("The file is not UTF-8 text. In your spreadsheet, save it as “CSV UTF-8”, then upload it again.")
        ) from None


class CsvSource:
    """The rows of a CSV text under its header row, with the line each row starts on."""

    def __init__(self, text: str):
        self.text = text
        first_line = next((line for line in io.StringIO(text) if line.strip()), "")
        # Spreadsheets in many locales separate with semicolons; a header row tells which.
        self.delimiter = max([",", ";", "\t"], key=first_line.count)
        self.reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        self.columns = self._read_header()

    def _read_header(self) -> dict[str, int]:
        try:
            header = next((row for row in self.reader if any(cell.strip() for cell in row)), None)
        except csv.Error as error:
            raise ImportFileError(_("The header row cannot be read: %(error)s.", error=error)) from None
        if header is None:
            raise ImportFileError(
                _("The file is empty. Put a header row (email, full_name, comment) on its first line.")
            )
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            key = HEADER_NAMES.get(" ".join(name.lower().replace("_", " ").split()))
            if key and key not in columns:
                columns[key] = index
        missing = [name for name in ("email", "full_name") if name not in columns]
        if missing:
            found = ", ".join(cell.strip() for cell in header if cell.strip()) or _("nothing")
            raise ImportFileError(
                _("The header row must name the columns email and full_name (or name); it has %(found)s.", found=found)
            )
        return columns

    def rows(self) -> Iterator[tuple[int, dict[str, str | None] | str]]:
        """(line, values) for each non-blank row, or (line, reason) for a row that cannot be read."""
        while True:
            line = self.reader.line_num + 1
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield line, _("cannot be read as CSV: %(error)s", error=error)
                continue
            if not any(cell.strip() for cell in cells):
                continue
            yield line, {name: cells[index] if index < len(cells) else "" for name, index in self.columns.items()}

    def count_rows(self) -> int:
        """The number of data rows, read from a fresh copy of the text."""
        return sum(1 for _ in CsvSource(self.text).rows())


def clean_row(values: dict[str, str | None]) -> tuple[str, str, str | None]:
    """The e-mail, full name and comment of one row, checked by the rules of the client form;
    ClientError says what is wrong with the row."""
    # No field can hold one (PostgreSQL cannot store it), as everywhere else in the site.
    if any("\x00" in value for value in values.values() if value):
        raise ClientError(_("the row contains a NUL character"))
    raw_email = (values.get("email") or "").strip()
    try:
        email = clean_email(raw_email)
    except ClientError as error:
        if not raw_email:
            raise
        # The address as the file has it, so that the person finds the row.
        raise ClientError(
            _("the e-mail '%(email)s' is not valid: %(error)s", email=raw_email, error=error), "email"
        ) from None
    full_name = clean_full_name(values.get("full_name"))
    # None when the file has no comment column: an update then keeps the current comment.
    comment = values.get("comment")
    return email, full_name, None if comment is None else clean_comment(comment)


# Importing ------------------------------------------------------------------------------------


def import_rows(
    owner_id: int,
    rows: Iterable[tuple[int, dict | str]],
    on_existing: str,
    after_batch: Callable[[ImportReport, list[RowProblem]], None] | None = None,
) -> ImportReport:
    """Import the rows for the owner: valid rows are created or, for an e-mail the owner
    already has, updated or skipped; every invalid row is reported with its line.

    `after_batch(report, new_problems)` is called after every BATCH_SIZE rows and at the end
    (the worker commits and reports progress there).
    """
    report = ImportReport()
    first_line_of: dict[str, int] = {}
    batch: list[tuple[str, str, str | None]] = []
    new_problems: list[RowProblem] = []

    def problem(line: int, reason: str, duplicate: bool = False) -> None:
        report.add_problem(line, reason, duplicate)
        new_problems.append(RowProblem(line, reason))

    def finish_batch() -> None:
        _write_batch(owner_id, batch, on_existing, report)
        batch.clear()
        if after_batch is not None:
            after_batch(report, list(new_problems))
        new_problems.clear()

    for line, values in rows:
        report.rows += 1
        if isinstance(values, str):
            problem(line, values)
        else:
            try:
                email, full_name, comment = clean_row(values)
            except ClientError as error:
                problem(line, str(error))
            else:
                if email in first_line_of:
                    problem(
                        line,
                        _(
                            "duplicate: the e-mail %(email)s is already on line %(line)s",
                            email=email,
                            line=first_line_of[email],
                        ),
                        duplicate=True,
                    )
                else:
                    first_line_of[email] = line
                    batch.append((email, full_name, comment))
        if report.rows % BATCH_SIZE == 0:
            finish_batch()
    if report.rows % BATCH_SIZE or not report.rows:
        finish_batch()
    return report


def _write_batch(
    owner_id: int, batch: list[tuple[str, str, str | None]], on_existing: str, report: ImportReport
) -> None:
    if not batch:
        return
    # A client created at the same moment by someone else makes the savepoint fail; the second
    # pass finds it among the existing ones.
    for attempt in (1, 2):
        created = updated = skipped = 0
        try:
            with db.session.begin_nested():
                existing = {
                    client.email: client
                    for client in db.session.scalars(
                        select(Client).where(
                            Client.owner_id == owner_id, Client.email.in_([email for email, _, _ in batch])
                        )
                    )
                }
                new_rows = []
                for email, full_name, comment in batch:
                    client = existing.get(email)
                    if client is None:
                        new_rows.append(
                            {"owner_id": owner_id, "email": email, "full_name": full_name, "comment": comment or ""}
                        )
                    elif on_existing == ON_EXISTING_UPDATE:
                        client.full_name = full_name
                        if comment is not None:
                            client.comment = comment
                        updated += 1
                    else:
                        skipped += 1
                if new_rows:
                    # One multi-row INSERT: far cheaper than a unit of work for thousands of rows.
                    db.session.execute(insert(Client), new_rows)
                    created = len(new_rows)
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        break
    report.created += created
    report.updated += updated
    report.skipped += skipped
    if created or updated:
        clear_stats_cache_after_commit(owner_id)


def import_text(owner_id: int, source: CsvSource, on_existing: str) -> ImportReport:
    """Import a small file inside the request; the caller commits."""
    return import_rows(owner_id, source.rows(), on_existing)


# Background imports ---------------------------------------------------------------------------

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def _key(import_id: str) -> str:
    return f"mailer:client-import:{import_id}"


def _problems_key(import_id: str) -> str:
    return _key(import_id) + ":problems"


def upload_path(import_id: str) -> Path:
    return Path(current_app.instance_path) / "imports" / f"{import_id}.csv"


def start_background_import(owner_id: int, filename: str, source: CsvSource, rows: int, on_existing: str) -> str:
    """Save the file and enqueue its import; returns the import id of the status page."""
    import_id = secrets.token_hex(12)
    path = upload_path(import_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source.text, encoding="utf-8")
    try:
        connection = rq.connection
        with connection.pipeline() as pipe:
            pipe.hset(
                _key(import_id),
                mapping={
                    "owner_id": owner_id,
                    "filename": filename[:200],
                    "on_existing": on_existing,
                    "state": QUEUED,
                    "total": rows,
                    "rows": 0,
                    "created": 0,
                    "updated": 0,
                    "skipped": 0,
                    "invalid": 0,
                    "duplicates": 0,
                    "started_at": utcnow().isoformat(),
                },
            )
            pipe.expire(_key(import_id), STATUS_TTL_SECONDS)
            pipe.execute()
        rq.queue.enqueue(
            "mailer.jobs.client_import.run_client_import",
            import_id,
            job_timeout=JOB_TIMEOUT_SECONDS,
            description=f"client import {import_id}",
        )
    except RedisError:
        log.exception("could not enqueue the client import %s", import_id)
        path.unlink(missing_ok=True)
        raise ImportFileError(
            _("The import queue cannot be reached right now. Please try again in a few minutes.")
        ) from None
    return import_id


@dataclass
class ImportStatus:
    import_id: str
    owner_id: int
    filename: str
    on_existing: str
    state: str
    total: int
    rows: int
    created: int
    updated: int
    skipped: int
    invalid: int
    duplicates: int
    error: str
    problems: list[RowProblem]

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    @property
    def percent(self) -> int:
        if self.state == DONE:
            return 100
        return min(100, self.rows * 100 // self.total) if self.total else 0

    @property
    def more_problems(self) -> int:
        return self.invalid + self.duplicates - len(self.problems)


def read_status(import_id: str) -> ImportStatus | None:
    data = {key.decode(): value.decode() for key, value in rq.connection.hgetall(_key(import_id)).items()}
    if not data:
        return None
    problems = []
    for item in rq.connection.lrange(_problems_key(import_id), 0, MAX_LISTED_PROBLEMS - 1):
        line, _, reason = item.decode().partition(":")
        problems.append(RowProblem(int(line), reason))
    numbers = {
        name: int(data.get(name, 0))
        for name in ("owner_id", "total", "rows", "created", "updated", "skipped", "invalid", "duplicates")
    }
    return ImportStatus(
        import_id=import_id,
        filename=data.get("filename", ""),
        on_existing=data.get("on_existing", ON_EXISTING_SKIP),
        state=data.get("state", QUEUED),
        error=data.get("error", ""),
        problems=problems,
        **numbers,
    )


def _save_progress(import_id: str, report: ImportReport, new_problems: list[RowProblem], state: str) -> None:
    with rq.connection.pipeline() as pipe:
        pipe.hset(
            _key(import_id),
            mapping={
                "state": state,
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "skipped": report.skipped,
                "invalid": report.invalid,
                "duplicates": report.duplicates,
            },
        )
        listed = report.invalid + report.duplicates - len(new_problems)
        room = max(0, MAX_LISTED_PROBLEMS - listed)
        if new_problems[:room]:
            pipe.rpush(_problems_key(import_id), *[f"{p.line}:{p.reason}" for p in new_problems[:room]])
        pipe.expire(_key(import_id), STATUS_TTL_SECONDS)
        pipe.expire(_problems_key(import_id), STATUS_TTL_SECONDS)
        pipe.execute()


def record_finished_import(owner_id: int, filename: str, on_existing: str, report: ImportReport) -> str:
    """Keep the result of an import made within the request under an import id, so that it has
    its own page (post/redirect/get: reloading it shows the result, it does not import again).
    Raises RedisError when Redis is unreachable."""
    import_id = secrets.token_hex(12)
    with rq.connection.pipeline() as pipe:
        pipe.hset(
            _key(import_id),
            mapping={
                "owner_id": owner_id,
                "filename": filename[:200],
                "on_existing": on_existing,
                "state": DONE,
                "total": report.rows,
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "skipped": report.skipped,
                "invalid": report.invalid,
                "duplicates": report.duplicates,
                "started_at": utcnow().isoformat(),
            },
        )
        if report.problems:
            pipe.rpush(_problems_key(import_id), *[f"{p.line}:{p.reason}" for p in report.problems])
        pipe.expire(_key(import_id), STATUS_TTL_SECONDS)
        pipe.expire(_problems_key(import_id), STATUS_TTL_SECONDS)
        pipe.execute()
    return import_id


def run_background_import(import_id: str) -> ImportReport | None:
    """The worker's part: import the saved file batch by batch, committing and reporting
    progress after each batch. Returns None when the import is unknown (expired), already
    finished, or cannot be read."""
    status = read_status(import_id)
    path = upload_path(import_id)
    if status is None or status.finished:
        path.unlink(missing_ok=True)
        return None
    rq.connection.hset(_key(import_id), "state", RUNNING)
    # The worker writes the reasons of rows not imported in the owner's language.
    with in_language_of(db.session.get(User, status.owner_id)):
        return _import_in_background(import_id, status, path)


def _import_in_background(import_id: str, status: "ImportStatus", path) -> ImportReport | None:

    def after_batch(report: ImportReport, new_problems: list[RowProblem]) -> None:
        db.session.commit()
        _save_progress(import_id, report, new_problems, RUNNING)

    try:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ImportFileError(_("The uploaded file is no longer on the server; upload it again.")) from None
        source = CsvSource(text)
        report = import_rows(status.owner_id, source.rows(), status.on_existing, after_batch=after_batch)
    except ImportFileError as error:
        db.session.rollback()
        rq.connection.hset(_key(import_id), mapping={"state": FAILED, "error": str(error)})
        return None
    except Exception:
        db.session.rollback()
        rq.connection.hset(
            _key(import_id), mapping={"state": FAILED, "error": _("The import stopped on an unexpected error.")}
        )
        raise  # recorded with its traceback among the failed jobs
    finally:
        path.unlink(missing_ok=True)
    _save_progress(import_id, report, [], DONE)
    return report
