"""The signing client an insurer's engineer uses to talk to CTPL Hub (DESIGN §5.1).

It signs the exact bytes it sends, so what the server hashes is what was signed: JSON is
serialised once (compact, UTF-8, non-ASCII kept as is) and those bytes go on the wire.
It depends only on httpx, `ctplhub.security.request_signing`, which is what the server
uses to check signatures, and `ctplhub.domain.reconciliation`, which is how the server
computes a book's digest, so the two can never disagree about either.

    from ctplhub.client import CtplHubClient, CtplHubError

    with CtplHubClient("https://ctplhub.example", "PICC-1a2b3c4d5e6f", secret) as hub:
        receipt = hub.report_event({"event_type": "ISSUED", "insurer_code": "PICC", ...})
        hub.heartbeat("PICC")
        print(hub.sync("PICC"))
        result = hub.reconcile("PICC", [("PDAA2025...", 3), ...])  # DESIGN §10
        print(result.to_resend)
        for d in hub.disputes(status="open")["disputes"]:  # DESIGN §10
            hub.resolve_dispute(d["dispute_id"], "corrected", "已补报续保保单")
        for p in hub.unmatched()["policies"]:  # DESIGN §11: the register disagrees
            print(p["policy_no"], p["reason"], p.get("register_plate"))
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.reconciliation import (
    BookDigest,
    VersionDiffers,
    digest_of_sorted,
    sorted_view,
    view_line,
)
from ctplhub.security.request_signing import signed_headers

__all__ = ["CtplHubClient", "CtplHubError", "ReconcileResult", "VersionDiffers"]


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What ``reconcile()`` found (DESIGN §10). Every list is in byte order of policy_no.

    - ``missing_here``: policies the platform does not hold: resend their events;
    - ``version_differs``: the platform holds another version (``ours``) than you
      (``yours``): resend when yours is newer, investigate when the platform's is;
    - ``unknown_to_you``: policies the platform holds that your export lacks: investigate.
    """

    match: bool
    yours: BookDigest
    platform: BookDigest
    missing_here: tuple[str, ...] = ()
    version_differs: tuple[VersionDiffers, ...] = ()
    unknown_to_you: tuple[str, ...] = ()

    @property
    def to_resend(self) -> tuple[str, ...]:
        """The policies whose latest event to report again, in byte order."""
        newer = (d.policy_no for d in self.version_differs if d.yours > d.ours)
        return tuple(sorted((*self.missing_here, *newer), key=str.encode))


ReconcileRow = tuple[str, int] | Mapping[str, object]


class CtplHubError(Exception):
    """A 4xx/5xx answer, carrying the fields of the `{"error": {...}}` body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def from_response(cls, response: httpx.Response) -> CtplHubError:
        """Build from the error body; a proxy's HTML error page still gives a usable error."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(response.status_code, "http_error", response.text[:500] or "no body")
        return cls(
            response.status_code,
            str(error.get("code", "http_error")),
            str(error.get("message", "")),
            error.get("details"),
        )


def _json_bytes(value: Any) -> bytes:
    # Compact and UTF-8: the bytes signed are the bytes sent, and Chinese names stay short.
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _pair(row: ReconcileRow) -> tuple[object, object]:
    if isinstance(row, Mapping):
        return row.get("policy_no"), row.get("version")
    if not isinstance(row, tuple) or len(row) != 2:
        raise ValueError("each row must be (policy_no, version) or {policy_no, version}")
    return row[0], row[1]


def _view_ndjson(policy_no: object, version: object) -> str:
    """``{"policy_no", "version"}`` as one NDJSON line, for rows ``view_line`` accepted: a
    number without control characters needs JSON's escaping only for ``"`` and ``\\``."""
    number = str(policy_no)
    if '"' in number or "\\" in number:
        number = jsonlib.dumps(number, ensure_ascii=False)[1:-1]
    return f'{{"policy_no":"{number}","version":{int(str(version))}}}\n'


class CtplHubClient:
    """A signed-request client for the insurer endpoints; not thread-safe per instance."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._key_id = key_id
        self._secret = secret
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        """Send one signed request and return the response as is (never raises on status).

        `path` is the request target below the base URL, query string included. The
        signature covers the target exactly as it goes on the wire: the base URL's path
        prefix included, after httpx's percent-encoding of anything not yet encoded.
        """
        if json is not None and content is not None:
            raise ValueError("pass json or content, not both")
        headers: dict[str, str] = {}
        body = b""
        if json is not None:
            body = _json_bytes(json)
            headers["Content-Type"] = "application/json"
        elif content is not None:
            body = content
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = self._absolute_url(path)
        target = url.raw_path.decode("ascii")
        headers.update(signed_headers(self._key_id, self._secret, method, target, body))
        return self._http.request(method.upper(), url, content=body, headers=headers)

    def report_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Report one policy event; 201 when new, 200 when already known (idempotent)."""
        return self._checked(self.request("POST", "/v1/policy-events", json=event))

    def report_batch(
        self,
        body: bytes | Iterable[dict[str, Any]],
        *,
        content_type: str = "application/x-ndjson",
    ) -> dict[str, Any]:
        """Report many events at once: raw NDJSON/CSV bytes, or dicts sent as NDJSON."""
        if not isinstance(body, bytes):
            body = b"".join(_json_bytes(event) + b"\n" for event in body)
        response = self.request(
            "POST", "/v1/policy-events/batch", content=body, content_type=content_type
        )
        return self._checked(response)

    def heartbeat(self, insurer_code: str, at: str | None = None) -> dict[str, Any]:
        """Tell the hub this insurer's feed is alive (keeps its data from going stale)."""
        payload: dict[str, Any] = {} if at is None else {"at": at}
        path = f"/v1/insurers/{quote(insurer_code, safe='')}/heartbeat"
        return self._checked(self.request("POST", path, json=payload))

    def sync(self, insurer_code: str) -> dict[str, Any]:
        """Fetch this insurer's sync state as the hub sees it."""
        path = f"/v1/insurers/{quote(insurer_code, safe='')}/sync"
        return self._checked(self.request("GET", path))

    def reconcile(self, insurer_code: str, rows: Iterable[ReconcileRow]) -> ReconcileResult:
        """Compare your book (``(policy_no, version)`` pairs or ``{"policy_no",
        "version"}`` dicts, any order, one per policy, each at its latest version) with
        the platform's: the digest first, computed here; the line-by-line diff only when
        the digests differ. Raises ``ValueError`` for a bad row before anything is sent."""
        pairs = [_pair(r) for r in rows]
        try:
            view = sorted_view([view_line(p, v) for p, v in pairs])
        except ValidationFailed as problem:
            raise ValueError(problem.message) from None
        yours = digest_of_sorted(view)
        base = f"/v1/insurers/{quote(insurer_code, safe='')}/reconcile"
        answer = self._checked(
            self.request("POST", base, json={"count": yours.count, "digest": yours.digest})
        )
        platform = BookDigest(int(answer["platform_count"]), str(answer["platform_digest"]))
        if answer["match"]:
            return ReconcileResult(True, yours, platform)
        diff_body = "".join(_view_ndjson(p, v) for p, v in pairs).encode()
        diff = self._checked(
            self.request(
                "POST", base + "/diff", content=diff_body, content_type="application/x-ndjson"
            )
        )
        return ReconcileResult(
            False,
            yours,
            platform,
            tuple(diff["missing_here"]),
            tuple(
                VersionDiffers(d["policy_no"], yours=d["yours"], ours=d["ours"])
                for d in diff["version_differs"]
            ),
            tuple(diff["unknown_to_you"]),
        )

    def disputes(self, status: str = "open", *, insurer_code: str | None = None) -> dict[str, Any]:
        """This insurer's disputes in ``status``, oldest first: ``{"disputes": [...],
        "signature": {...}}``, signed by the platform (DESIGN §3.1). ``insurer_code``
        defaults to the one the key id names (``PICC-1a2b…`` → ``PICC``)."""
        code = insurer_code or self._key_id.rsplit("-", 1)[0]
        path = f"/v1/insurers/{quote(code, safe='')}/disputes?status={quote(status, safe='')}"
        return self._checked(self.request("GET", path))

    def resolve_dispute(self, dispute_id: int | str, outcome: str, note: str) -> dict[str, Any]:
        """Answer one of your disputes: ``outcome`` is ``corrected`` or ``rejected``,
        ``note`` tells the owner what was done or why not. Returns its status and history;
        a dispute resolved already raises ``CtplHubError`` with code ``dispute_closed``."""
        path = f"/v1/disputes/{quote(str(dispute_id), safe='')}/resolve"
        body = {"outcome": outcome, "note": note}
        return self._checked(self.request("POST", path, json=body))

    def unmatched(self, insurer_code: str | None = None) -> dict[str, Any]:
        """This insurer's policies in force now that the vehicle register does not match
        (DESIGN §11): ``{"policies": [{"policy_no", "reason", "register_plate"?}]}``,
        ``reason`` being ``vin_not_registered`` or ``plate_differs`` (then
        ``register_plate`` is the register's). ``insurer_code`` defaults to the key id's."""
        code = insurer_code or self._key_id.rsplit("-", 1)[0]
        return self._checked(self.request("GET", f"/v1/insurers/{quote(code, safe='')}/unmatched"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CtplHubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _absolute_url(self, path: str) -> httpx.URL:
        # The same merge httpx does for relative URLs, done here so that the signed target
        # is taken from the very URL object that is sent (base always ends in "/").
        base = self._http.base_url
        relative = httpx.URL(path)
        if relative.is_absolute_url or not path.startswith("/"):
            raise ValueError(f"path must start with '/' and be relative, got {path!r}")
        return base.copy_with(raw_path=base.raw_path + relative.raw_path.lstrip(b"/"))

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            raise CtplHubError.from_response(response)
        body = response.json()
        if not isinstance(body, dict):
            raise CtplHubError(response.status_code, "unexpected_body", "expected a JSON object")
        return body
