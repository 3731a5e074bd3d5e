"""The view's only way to the data: the REST API over HTTP (httpx). No model, no database here.

Every call returns the JSON body or raises :class:`ApiCallError` carrying the status and the API's
``detail`` (or why the API could not be reached), which the pages show as they are.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiCallError(Exception):
    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"{status or 'unreachable'}: {detail}")
        self.status = status
        self.detail = detail


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return detail if isinstance(detail, str) else str(detail)[:500]


class ApiClient:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
                response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiCallError(None, f"API at {self.base_url} unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise ApiCallError(response.status_code, _detail(response))
        return response.json()

    def decision(self, application_id: str) -> dict[str, Any]:
        return self._call("GET", f"/decisions/{application_id}")  # type: ignore[no-any-return]

    def client_decisions(self, sk_id_curr: int, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset}
        return self._call("GET", f"/clients/{sk_id_curr}/decisions", params=params)  # type: ignore[no-any-return]

    def client_features(self, sk_id_curr: int) -> dict[str, Any]:
        return self._call("GET", f"/clients/{sk_id_curr}/features")  # type: ignore[no-any-return]

    def review(self, application_id: str, decision: str, reviewer: str, reason: str) -> dict[str, Any]:
        body = {
            "application_id": application_id,
            "decision": decision,
            "reviewer": reviewer,
            "reason": reason,
        }
        return self._call("POST", "/reviews", json=body)  # type: ignore[no-any-return]

    def metrics_text(self) -> str:
        try:
            with httpx.Client(timeout=self.timeout_s) as client:
                response = client.get(f"{self.base_url}/metrics")
        except httpx.HTTPError as exc:
            raise ApiCallError(None, f"{self.base_url}/metrics unreachable") from exc
        if response.status_code >= 400:
            raise ApiCallError(response.status_code, _detail(response))
        return response.text
