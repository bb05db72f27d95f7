"""The gateway's exception tree.

Library code raises these; only the HTTP layer turns them into JSON errors
``{"error": {"type", "message"}}`` with the status below, and only the CLI turns
them into ``error: ...`` lines and exit codes.

    GatewayError
    ├── ConfigError              settings or model config unusable (CLI: exit 1)
    ├── StorageError             usage log cannot be opened or written
    ├── AuthError                401, with WWW-Authenticate: Bearer
    │   └── AuthUnavailable      503: the credential cannot be checked now (identity provider unreachable)
    ├── Forbidden                403: a valid principal without the scope the endpoint needs
    ├── UnknownCredential        no API key or token with that id (CLI: exit 1)
    ├── RequestError             400, the client's request body is wrong
    │   ├── PayloadTooLarge      413
    │   ├── UnknownModel         404, lists the configured models
    │   └── UnsupportedFeature   400, names the feature the provider cannot serve
    ├── RateLimited              429, with Retry-After
    └── UpstreamError            a provider call failed
        ├── UpstreamTimeout      504
        ├── UpstreamRejected     the provider said the request was wrong: its 4xx is passed on
        ├── UpstreamAuthFailed   502: the gateway's own upstream credentials were refused
        ├── UpstreamRateLimited  429 when the whole chain ends on it
        └── UpstreamUnavailable  502: connect errors, 5xx, an exhausted chain
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def validation_problems(exc: ValidationError) -> str:
    """A pydantic error as one line: `field: problem; field: problem`."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}


class ConfigError(GatewayError):
    error_type = "config_error"


class StorageError(GatewayError):
    status_code = 503
    error_type = "storage_error"


class AuthError(GatewayError):
    status_code = 401
    error_type = "authentication_error"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # bounded label for llmops_auth_failures_total

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="llmops"'}


class AuthUnavailable(AuthError):
    """The credential cannot be verified right now (e.g. the issuer's JWKS is unreachable): retry later."""

    status_code = 503
    error_type = "auth_unavailable"

    def __init__(self, message: str, reason: str = "jwks_unavailable", retry_after_s: float = 5.0) -> None:
        super().__init__(message, reason)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after_s + 0.499)))}


class Forbidden(GatewayError):
    status_code = 403
    error_type = "permission_error"


class UnknownCredential(GatewayError):
    status_code = 404
    error_type = "not_found"


class RequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(RequestError):
    status_code = 413


class UnknownModel(RequestError):
    status_code = 404
    error_type = "model_not_found"


class UnsupportedFeature(RequestError):
    error_type = "unsupported_feature"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after_s + 0.499)))}


class UpstreamError(GatewayError):
    """A provider call failed; ``retriable`` says whether a retry or fallback may help."""

    status_code = 502
    error_type = "upstream_error"
    retriable = True
    reason = "error"  # bounded label for llmops_upstream_errors_total


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "upstream_timeout"
    reason = "timeout"


class UpstreamUnavailable(UpstreamError):
    reason = "unavailable"

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        if upstream_status is not None:
            self.reason = f"http_{upstream_status // 100}xx"


class UpstreamRateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_exceeded"
    reason = "rate_limited"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after_s + 0.499)))}


class UpstreamRejected(UpstreamError):
    """The provider refused the request as malformed (400/404/422): the client's fault, not retried."""

    retriable = False
    reason = "rejected"

    def __init__(self, message: str, upstream_status: int) -> None:
        super().__init__(message)
        self.status_code = upstream_status
        self.error_type = "invalid_request_error"


class UpstreamAuthFailed(UpstreamError):
    """The provider refused the gateway's own key: never surfaced as a 401 the client would misread."""

    error_type = "upstream_auth_error"
    retriable = True  # another provider in the chain has other credentials
    reason = "auth"
