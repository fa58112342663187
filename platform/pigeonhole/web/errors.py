"""One shape for every refusal: ``{"status_code": N, "detail": "sentence", ...}``."""

from __future__ import annotations

from litestar import Request, Response

from pigeonhole.domain.errors import DomainError, TooManyAttempts


def domain_error_handler(request: Request, exc: DomainError) -> Response:
    headers = {}
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    body = {"status_code": exc.status_code, "detail": exc.message}
    body.update({k: v for k, v in exc.extra.items() if k not in body})
    return Response(body, status_code=exc.status_code, headers=headers)
