"""Domain errors: each carries the sentence a user reads and the HTTP status.

The web layer turns them into ``{"status_code", "detail"}`` answers; the CLI
prints the sentence. Every one is raised before anything is written, or inside
the transaction that it therefore rolls back: a refusal changes nothing.
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(DomainError):
    status_code = 404

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} '{key}' not found", kind=kind)


class Invalid(DomainError):
    status_code = 422


class Conflict(DomainError):
    status_code = 409


class Forbidden(DomainError):
    status_code = 403


class TooManyAttempts(DomainError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """Something the request needs is offline; nothing was changed."""

    status_code = 503


class DoorFailed(DomainError):
    """The lock hardware did not open the door; nothing was handed over."""

    status_code = 502


class Unauthenticated(DomainError):
    """No valid credential: a missing, wrong, expired or revoked key or session."""

    status_code = 401
