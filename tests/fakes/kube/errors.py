"""API errors as the real server reports them: a ``Status`` object with reason and code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.kube.resources import ResourceType

__all__ = ["REASONS", "ApiError", "status_body"]

# HTTP code -> the StatusReason the real API server uses for it.
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, ""),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """Raised inside the fake; the HTTP layer turns it into a Status response."""

    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details = details

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.message, reason=self.reason, details=self.details)

    @staticmethod
    def _details(rt: ResourceType, name: str | None) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": rt.plural}
        if rt.group:
            d["group"] = rt.group
        if name:
            d["name"] = name
        return d

    @classmethod
    def not_found(cls, rt: ResourceType, name: str) -> ApiError:
        return cls(404, f'{rt.key} "{name}" not found', details=cls._details(rt, name))

    @classmethod
    def namespace_not_found(cls, namespace: str) -> ApiError:
        return cls(
            404, f'namespaces "{namespace}" not found', details={"name": namespace, "kind": "namespaces"}
        )

    @classmethod
    def already_exists(cls, rt: ResourceType, name: str) -> ApiError:
        return cls(
            409, f'{rt.key} "{name}" already exists', reason="AlreadyExists", details=cls._details(rt, name)
        )

    @classmethod
    def conflict(cls, rt: ResourceType, name: str) -> ApiError:
        return cls(
            409,
            f'Operation cannot be fulfilled on {rt.key} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            details=cls._details(rt, name),
        )

    @classmethod
    def invalid(cls, rt: ResourceType, name: str, causes: Sequence[tuple[str, str]]) -> ApiError:
        text = ", ".join(f"{f}: {m}" for f, m in causes)
        details = cls._details(rt, name)
        details["kind"] = rt.kind
        details["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
        return cls(422, f'{rt.kind} "{name}" is invalid: {text}', details=details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, message)

    @classmethod
    def expired(cls, message: str) -> ApiError:
        return cls(410, message)

    @classmethod
    def forbidden(cls, user: str, verb: str, rt: ResourceType | None, namespace: str | None) -> ApiError:
        resource = rt.plural if rt else "path"
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        group = rt.group if rt else ""
        return cls(
            403,
            f'{rt.key if rt else "path"} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}"{where}',
            details={"kind": resource, **({"group": group} if group else {})},
        )
