"""A thin client for one tenant's API: paths are relative to /api/v1/t/<slug>."""

from __future__ import annotations

from typing import Any


class Api:
    def __init__(self, client, slug: str, key: str | None) -> None:
        self.client = client
        self.slug = slug
        self.key = key

    @property
    def prefix(self) -> str:
        return f"/api/v1/t/{self.slug}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    async def request(self, method: str, path: str, **kwargs: Any):
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return await self.client.request(method, self.prefix + path, headers=headers, **kwargs)

    async def get(self, path: str, **kw):
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw):
        return await self.request("POST", path, json=json, **kw)

    async def put(self, path: str, json: Any = None, **kw):
        return await self.request("PUT", path, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw):
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str, **kw):
        return await self.request("DELETE", path, **kw)

    async def ok(self, method: str, path: str, json: Any = None, status: int | None = None):
        response = await self.request(method, path, json=json)
        assert response.status_code < 300 if status is None else response.status_code == status, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None
