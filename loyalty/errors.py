"""The base of every domain error: one class per business failure, each with a stable code."""


class DomainError(Exception):
    """A business rule refused the operation; nothing was changed.

    `code` is stable and machine-readable; `kind` says what sort of failure it is, for the
    HTTP problem layer (loyalty.http.problems): "refused" (the object's state does not allow
    the operation), "not_found", "invalid" (the input), "conflict". Each API family maps the
    kind and the code to its own envelope; `field` names the input at fault, if any.
    """

    code = "domain_error"
    kind = "refused"
    field = ""
    message = "The operation was refused."

    def __init__(self, message: str | None = None, **details) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class NotFound(DomainError):
    """The object the operation names does not exist (for this caller)."""

    kind = "not_found"


class InvalidInput(DomainError):
    """An input a service refuses. `field` is the service's (model's) name for it, never an
    API's wire name; `refers_to` lists other fields the message names, so that each API
    family can say them in its own words."""

    code = "invalid"
    kind = "invalid"
    message = "Invalid input."

    def __init__(self, field: str, message: str, *, refers_to: tuple[str, ...] = ()) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field
        self.refers_to = refers_to
