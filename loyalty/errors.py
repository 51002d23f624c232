"""The base of every domain error: one class per business failure, each with a stable code."""


class DomainError(Exception):
    """A business rule refused the operation; nothing was changed.

    `code` is stable and machine-readable; each API family maps it to its own envelope.
    """

    code = "domain_error"
    message = "The operation was refused."

    def __init__(self, message: str | None = None, **details) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidInput(DomainError):
    code = "invalid"
    message = "Invalid input."

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field
