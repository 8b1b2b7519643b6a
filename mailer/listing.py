"""The query-string arguments of the list pages (search, sort, owner filter)."""
from flask import request

from mailer.permissions import can_view_all

SEARCH_MAX_LENGTH = 200


def list_arguments(sort_columns: dict, default_sort: str) -> dict:
    """Search, sort and owner filter as they appear in the query string; an unknown sort falls
    back to the default and only managers and admins filter by owner."""
    sort = request.args.get("sort", default_sort)
    if sort.lstrip("-") not in sort_columns:
        sort = default_sort
    owner_id = request.args.get("owner", type=int) if can_view_all() else None
    return {"q": request.args.get("q", "").strip()[:SEARCH_MAX_LENGTH], "sort": sort, "owner": owner_id}
