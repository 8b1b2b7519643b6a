"""Lists a page at a time, by keyset: a page starts after (or ends before) the sort values of a
row, so page 1,000 costs what page 1 costs, and no row is skipped or shown twice when rows are
added meanwhile. No request objects here: the web layer (mailer.listing) reads the query string
and passes plain values.

A sort is a list of keys, each an SQL expression and a direction, ending with the id, so that
equal values still have one order. Keys must never be NULL (see `nulls_last`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.orm import selectinload

from mailer.extensions import db
from mailer.models import UTCDateTime

# Rows on a page of every list and report, as in the admin panel: more costs rendering time on
# every page view for rows few people read (filters, search and the CSV exports find the rest).
PER_PAGE = 25

# How many rows a list counts at most: above it, "more than 1,000" is worth more than the cost
# of counting hundreds of thousands of rows on every page.
COUNT_CAP = 1000

FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Key:
    expression: ColumnElement
    descending: bool = False


@dataclass(frozen=True)
class NullsLast:
    """A date column that may be empty, sorted with the empty ones last in either direction."""

    column: ColumnElement

    def expression(self, descending: bool) -> ColumnElement:
        return func.coalesce(self.column, literal(FAR_PAST if descending else FAR_FUTURE, UTCDateTime()))


def sort_keys(sort_columns: dict, sort: str, default_sort: str, id_column) -> list[Key]:
    """The keys of `sort`, a name of `sort_columns` with "-" first for descending; the id
    breaks ties in the same direction. An unknown name sorts by `default_sort`."""
    if sort.lstrip("-") not in sort_columns:
        sort = default_sort
    descending = sort.startswith("-")
    column = sort_columns[sort.lstrip("-")]
    expression = column.expression(descending) if isinstance(column, NullsLast) else column
    return [Key(expression, descending), Key(id_column, descending)]


def visible_rows(model, viewer, *, owner_id: int | None = None, view_all: bool = False) -> Select:
    """The rows of an owned model a list shows: the viewer's own, or everyone's (optionally one
    owner's) when `view_all` (managers and admins), with the owners loaded for their column."""
    query = select(model)
    if not view_all:
        return query.where(model.owner_id == viewer.id)
    query = query.options(selectinload(model.owner))
    return query.where(model.owner_id == owner_id) if owner_id else query


@dataclass
class Page:
    items: list
    # The sort values of the first and last rows, to ask for the page before or after; None
    # when there is no such page.
    previous: tuple | None = None
    next: tuple | None = None
    # Rows in the whole list, counted up to COUNT_CAP (`more` when there are more) on its first
    # page; None on the others.
    count: int | None = None
    more: bool = False
    keys: list[Key] = field(default_factory=list, repr=False)

    @property
    def paged(self) -> bool:
        return self.previous is not None or self.next is not None


def checked_cursor(keys: Sequence[Key], values: Sequence | None) -> tuple | None:
    """The cursor if it holds one value of the right type per key; None (the first page)
    for anything else, so that an edited address shows a page rather than an error."""
    if values is None or len(values) != len(keys):
        return None
    checked = []
    for key, value in zip(keys, values, strict=True):
        expected = key.expression.type.python_type
        if issubclass(expected, Enum):
            try:
                value = expected(value)
            except ValueError:
                return None
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            return None
        if isinstance(value, datetime) and value.tzinfo is None:
            return None
        if isinstance(value, str) and "\x00" in value or isinstance(value, int) and not -(2**63) <= value < 2**63:
            return None
        checked.append(value)
    return tuple(checked)


def beyond(keys: Sequence[Key], values: Sequence) -> ColumnElement:
    """Rows that come after `values` in the order of `keys`."""
    if len({key.descending for key in keys}) == 1:
        # One direction: a row comparison, which an index on the keys answers directly.
        row, cursor = (
            tuple_(*[key.expression for key in keys]),
            tuple_(*[literal_of(key, v) for key, v in zip(keys, values, strict=True)]),
        )
        return row < cursor if keys[0].descending else row > cursor
    alternatives = []
    for index, key in enumerate(keys):
        equal = [keys[j].expression == literal_of(keys[j], values[j]) for j in range(index)]
        value = literal_of(key, values[index])
        alternatives.append(and_(*equal, key.expression < value if key.descending else key.expression > value))
    # The first key's bound on its own, so that an index on the keys starts at the cursor.
    first = (
        keys[0].expression <= literal_of(keys[0], values[0])
        if keys[0].descending
        else keys[0].expression >= literal_of(keys[0], values[0])
    )
    return and_(first, or_(*alternatives))


def literal_of(key: Key, value) -> ColumnElement:
    return literal(value, key.expression.type)


def reversed_keys(keys: Sequence[Key]) -> list[Key]:
    return [Key(key.expression, not key.descending) for key in keys]


def ordered(query: Select, keys: Sequence[Key]) -> Select:
    return query.order_by(*[key.expression.desc() if key.descending else key.expression.asc() for key in keys])


def keyset_page(
    query: Select,
    keys: list[Key],
    per_page: int,
    *,
    after: Sequence | None = None,
    before: Sequence | None = None,
    count: bool = True,
) -> Page:
    """One page of `query` (which selects one entity; the last key is its id) in the order of
    `keys`: the first page, the page after the row whose sort values are `after`, or the one
    before `before`.

    Two statements: the sort values of the rows from the cursor on (one more than a page, to
    know whether another follows; on the first page, with `count`, with the number of rows up
    to COUNT_CAP + 1, counted by the database in the same walk of its index), then the page's
    rows by id.
    """
    after, before = checked_cursor(keys, after), checked_cursor(keys, before)
    backwards = before is not None and after is None
    walk = reversed_keys(keys) if backwards else keys
    cursor = before if backwards else after
    positions = query.order_by(None).with_only_columns(*[key.expression for key in keys], maintain_column_froms=True)
    if cursor is not None:
        positions = positions.where(beyond(walk, cursor))
    counting = count and cursor is None
    if counting:
        # The database counts the first COUNT_CAP + 1 rows and returns one page of them:
        # bringing a thousand rows into Python only to count them costs more than the page. The
        # page is cut by row number, not by LIMIT: under a LIMIT the planner would price the
        # count's walk as if it stopped after a page, and prefer walking the sort's index
        # through every row over finding a search's few matches by their own index.
        counted = ordered(positions, keys).limit(COUNT_CAP + 1).subquery()
        order = [column.desc() if key.descending else column.asc() for column, key in zip(counted.c, keys, strict=True)]
        numbered = select(
            *counted.c, func.count().over().label("total"), func.row_number().over(order_by=order).label("position")
        ).subquery()
        statement = select(*numbered.c).where(numbered.c.position <= per_page + 1).order_by(numbered.c.position)
        rows = db.session.execute(statement).all()
        total = rows[0].total if rows else 0
        rows = [row[:-2] for row in rows]
    else:
        rows = db.session.execute(ordered(positions, walk).limit(per_page + 1)).all()
    more_this_way = len(rows) > per_page
    shown = [tuple(row) for row in rows[:per_page]]
    if backwards:
        shown.reverse()
    ids = [row[-1] for row in shown]
    found = {item.id: item for item in db.session.scalars(query.where(keys[-1].expression.in_(ids)))} if ids else {}
    page = Page([found[i] for i in ids if i in found], keys=keys)
    first, last = (shown[0], shown[-1]) if shown else (None, None)
    if backwards:
        page.previous, page.next = (first if more_this_way else None), last
    else:
        page.previous, page.next = (first if cursor is not None else None), (last if more_this_way else None)
    if counting:
        page.count, page.more = min(total, COUNT_CAP), total > COUNT_CAP
    return page
