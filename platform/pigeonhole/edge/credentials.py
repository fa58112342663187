"""The site agent's own credential, kept in a file only its user can read.

``pigeonhole agent enrol`` trades a one-time enrolment token for an API key of
role ``agent`` and writes it here (mode 0600, written to a temporary file and
renamed, so a crash never leaves half a credential); ``pigeonhole agent`` reads
it when no key is given. The same folder holds the agent's journal of commands.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx

from pigeonhole.edge.site import endpoint


class EnrolmentFailed(Exception):
    pass


def default_path() -> Path:
    explicit = os.environ.get("PIGEONHOLE_AGENT_CREDENTIALS")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("PIGEONHOLE_DATA_DIR", "var")) / "agent-credentials.json"


def journal_path(folder: Path, tenant: str, key: str) -> Path:
    """One journal per tenant and key, in the credentials' folder: two agents never share one."""
    tag = hashlib.sha256(key.encode()).hexdigest()[:12]
    return folder / f"agent-journal-{tenant}-{tag}.jsonl"


def save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EnrolmentFailed(
            f"no agent credentials at {path}: run `pigeonhole agent enrol` first, or give --key"
        ) from None
    except (OSError, ValueError) as exc:
        raise EnrolmentFailed(f"cannot read the agent credentials at {path}: {exc}") from None
    missing = [k for k in ("url", "tenant", "key") if not data.get(k)]
    if missing:
        raise EnrolmentFailed(f"the agent credentials at {path} lack {', '.join(missing)}")
    return data


def enrol(url: str, tenant: str, token: str, path: Path, *, force: bool = False) -> dict:
    """Exchange the token and save the credential; returns what was saved (with the key)."""
    endpoint(url, tenant)  # the same checks as the agent's own URL
    if path.exists() and not force:
        raise EnrolmentFailed(
            f"{path} already holds agent credentials: use --force to replace them "
            "(the old key stays valid until an administrator revokes it)"
        )
    target = url.rstrip("/") + "/api/v1/agents/enrol"
    try:
        response = httpx.post(target, json={"tenant": tenant, "token": token}, timeout=30)
    except httpx.HTTPError as exc:
        raise EnrolmentFailed(f"cannot reach {url}: {exc}") from None
    if response.status_code not in (200, 201):
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise EnrolmentFailed(f"the server refused the enrolment ({response.status_code}): {detail}")
    answer = response.json()
    data = {
        "url": url,
        "tenant": tenant,
        "key": answer["key"],
        "agent_id": answer["agent_id"],
        "name": answer["name"],
        "bank_id": answer.get("bank_id"),
    }
    save(path, data)
    return data
