"""Failpoints: named places where an operator or a test can make the process fail.

``PIGEONHOLE_FAILPOINTS="notify.before_send=exit"`` makes the process exit at
once (as a crash or ``kill -9`` would) when it reaches that place. Tests use it
to prove that a crash between commit and send loses nothing; production runs
with none set, and then a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os


def _parse(spec: str) -> dict[str, str]:
    points = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, action = item.partition("=")
        points[name] = action or "exit"
    return points


_points = _parse(os.environ.get("PIGEONHOLE_FAILPOINTS", ""))


def hit(name: str) -> None:
    action = _points.get(name)
    if action == "exit":
        os._exit(137)
    if action == "raise":
        raise RuntimeError(f"failpoint {name}")
