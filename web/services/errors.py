"""Domain errors; views map them to status codes and inline messages."""

from __future__ import annotations


class DomainError(Exception):
    """Root of the errors a person can be shown."""


class NotFound(DomainError):
    """The thing asked for does not exist."""


class ValidationFailed(DomainError):
    """Input was refused; `errors` maps field names to messages."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class InvalidTransition(DomainError):
    """An order action is not allowed in the order's current state."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action}: {reason}")
        self.action = action
        self.reason = reason
