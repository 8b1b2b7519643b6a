"""The refusal that every service raises for a value a person typed."""


class FieldError(ValueError):
    """A change that cannot be made; the message is for the person, and `field` names the form
    field it belongs to (None: the form as a whole)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field
