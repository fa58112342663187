"""Failure counters for the guessable steps of signing in.

A password, a TOTP code and the "forgot your password" mail can each be tried
over and over; each gets a counter per subject (an IP address, a user) in the
database, so every API process sees the same count. A subject that fails
``limit`` times within ``window`` waits ``window`` before the next try, and
gets 429 with Retry-After until then. The counters are written in their own
transaction: a refusal must still count after the request's work rolls back.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta

from pigeonhole.db.engine import Scope
from pigeonhole.db.tables import SigninThrottle
from pigeonhole.domain import clock
from pigeonhole.domain.errors import TooManyAttempts


@dataclass(frozen=True)
class Rule:
    kind: str
    limit: int
    window: timedelta
    message: str


def _retry_after(until) -> int:
    return max(1, math.ceil((until - clock.now()).total_seconds()))


async def check(scope: Scope, rule: Rule, subject: str) -> None:
    """Raise 429 while the subject waits; otherwise do nothing."""
    row = (
        await scope.select(SigninThrottle.blocked_until)
        .where((SigninThrottle.kind == rule.kind) & (SigninThrottle.subject == subject))
        .first()
    )
    if row and row["blocked_until"] and row["blocked_until"] > clock.now():
        raise TooManyAttempts(rule.message, retry_after=_retry_after(row["blocked_until"]))


async def fail(scope: Scope, rule: Rule, subject: str) -> bool:
    """Count one failure; True when it made the subject wait.

    The count is an atomic increment (``failures = failures + 1``), so
    failures arriving together are all counted.
    """
    now = clock.now()
    await scope.insert(
        SigninThrottle,
        dict(id=uuid.uuid4(), kind=rule.kind, subject=subject, failures=0, window_started_at=now),
    ).on_conflict(
        target=(SigninThrottle.tenant_id, SigninThrottle.kind, SigninThrottle.subject), action="DO NOTHING"
    )
    where = (SigninThrottle.kind == rule.kind) & (SigninThrottle.subject == subject)
    counted = await (
        scope.update(SigninThrottle, {SigninThrottle.failures: SigninThrottle.failures + 1})
        .where(where & (SigninThrottle.window_started_at > now - rule.window))
        .returning(SigninThrottle.failures)
    )
    if not counted:  # the window had passed: this failure starts a new one
        counted = await (
            scope.update(SigninThrottle, {SigninThrottle.failures: 1, SigninThrottle.window_started_at: now})
            .where(where)
            .returning(SigninThrottle.failures)
        )
    if counted[0]["failures"] < rule.limit:
        return False
    await scope.update(
        SigninThrottle,
        {
            SigninThrottle.failures: 0,
            SigninThrottle.window_started_at: now,
            SigninThrottle.blocked_until: now + rule.window,
        },
    ).where(where)
    return True


async def clear(scope: Scope, rule: Rule, subject: str) -> None:
    await scope.delete(SigninThrottle).where(
        (SigninThrottle.kind == rule.kind) & (SigninThrottle.subject == subject)
    )


def blocked_error(rule: Rule) -> TooManyAttempts:
    return TooManyAttempts(rule.message, retry_after=math.ceil(rule.window.total_seconds()))
