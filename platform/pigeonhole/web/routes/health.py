from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from litestar.response import Response

from pigeonhole.db.tables import Tenant


@get("/health", tags=["platform"], summary="Database and broker state", include_in_schema=True)
async def health(state: State) -> Response:
    report: dict[str, str] = {}
    try:
        await Tenant.count()
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"unreachable: {exc}"
    services = getattr(state, "services", None)
    report["broker"] = services.broker_status() if services else "not started"
    report["agent"] = services.agent_status() if services else "not started"
    ok = report["database"] == "ok" and report["broker"].startswith("ok")
    return Response({"status": "ok" if ok else "degraded", **report}, status_code=200 if ok else 503)
