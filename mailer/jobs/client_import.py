"""Importing a large client CSV file in the background."""

from mailer.services import client_import


def run_client_import(import_id: str) -> dict | None:
    """Import the file saved for `import_id`; progress goes to the import's status page."""
    report = client_import.run_background_import(import_id)
    if report is None:
        return None
    return {
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "skipped": report.skipped,
        "invalid": report.invalid,
    }
