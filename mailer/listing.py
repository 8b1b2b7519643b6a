"""The query-string arguments of the list pages (search, sort, owner filter)."""
from flask import request
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from mailer.extensions import db
from mailer.permissions import can_view_all
from mailer.urls import positive_int

SEARCH_MAX_LENGTH = 200


def list_arguments(sort_columns: dict, default_sort: str) -> dict:
    """Search, sort and owner filter as they appear in the query string; an unknown sort falls
    back to the default and only managers and admins filter by owner."""
    sort = request.args.get("sort", default_sort)
    if sort.lstrip("-") not in sort_columns:
        sort = default_sort
    owner_id = request.args.get("owner", type=positive_int) if can_view_all() else None
    return {"q": request.args.get("q", "").strip()[:SEARCH_MAX_LENGTH], "sort": sort, "owner": owner_id}


def paginate(query: Select, per_page: int):
    """One page of `query`, numbered by the `page` argument; a page number that is not one
    (text, zero, negative, past any database's range) shows the first page."""
    return db.paginate(query, page=request.args.get("page", 1, type=positive_int), per_page=per_page,
                       max_per_page=per_page, error_out=False)


def visible_rows(model, viewer, *, owner_id: int | None = None, view_all: bool = False) -> Select:
    """The rows of an owned model a list shows: the viewer's own, or everyone's (optionally one
    owner's) when `view_all` (managers and admins), with the owners loaded for their column."""
    query = select(model)
    if not view_all:
        return query.where(model.owner_id == viewer.id)
    query = query.options(selectinload(model.owner))
    return query.where(model.owner_id == owner_id) if owner_id else query


def sorted_rows(query: Select, model, sort_columns: dict, sort: str, default_sort: str) -> Select:
    """Order by a column named in `sort` ("-" first for descending); the id breaks ties in the
    same direction, so equal values keep a stable order across pages."""
    column = sort_columns.get(sort.lstrip("-"), sort_columns[default_sort.lstrip("-")])
    if sort.startswith("-"):
        return query.order_by(column.desc(), model.id.desc())
    return query.order_by(column.asc(), model.id.asc())
