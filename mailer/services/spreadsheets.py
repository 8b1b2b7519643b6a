"""CSV cells that a spreadsheet opens as text: one rule for every export."""

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """Make a text cell inert in spreadsheets: a leading quote stops it being read as a formula.
    Valid e-mail addresses can start with these too (`=1+2-x@example.com`)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
