"""Why an inbox event is not applied, as a kind and parameters the sync log renders.

The exception's text stays in `InboxEvent.error` and in the cause's `detail` parameter (shown
as is, in monospace); the kind says in words, in the reader's language, what went wrong.
"""

from __future__ import annotations

import re
from typing import Any

from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ConnectorError,
    InvalidSignature,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    TopicMismatch,
)
from web.models import InboxEvent

DETAIL_MAX_LENGTH = 1000
HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")

# Kinds this module writes; a notice another step leaves on an applied event (totals that
# do not add up) is not one of them and survives a successful attempt.
FAILURE_KINDS = frozenset(
    {
        "shop_unavailable",
        "rate_limited",
        "auth_failed",
        "not_found_at_shop",
        "unreadable",
        "invalid_signature",
        "refused",
        "connector_error",
        "gave_up",
        "failed",
    }
)


def cause_of(exc: Exception) -> tuple[str, dict[str, Any]]:
    """The cause kind and parameters for a connector error ("failed" for any other error)."""
    detail = f"{type(exc).__name__}: {exc}"[:DETAIL_MAX_LENGTH]
    if not isinstance(exc, ConnectorError):
        return "failed", {"detail": detail}
    if isinstance(exc, RateLimited):
        return "rate_limited", {"retry_after": exc.retry_after, "detail": detail}
    if isinstance(exc, PlatformUnavailable):
        return "shop_unavailable", {"status": http_status(str(exc)), "detail": detail}
    if isinstance(exc, AuthFailed):
        return "auth_failed", {"status": http_status(str(exc)), "detail": detail}
    if isinstance(exc, NotFoundAtShop):
        return "not_found_at_shop", {"detail": detail}
    if isinstance(exc, InvalidSignature):
        return "invalid_signature", {"detail": detail}
    if isinstance(exc, TopicMismatch):
        return "topic_mismatch", {"topic": exc.topic[:80], "detail": str(exc)[:DETAIL_MAX_LENGTH]}
    if isinstance(exc, BadPayload):
        return "unreadable", {"detail": str(exc)[:DETAIL_MAX_LENGTH]}
    if isinstance(exc, PermanentError):
        return "refused", {"detail": detail}
    return "connector_error", {"status": http_status(str(exc)), "detail": detail}


def http_status(text: str) -> int | None:
    """The HTTP status named in an error's text, if any."""
    found = HTTP_STATUS.search(text)
    return int(found.group(1)) if found else None


def set_cause(event: InboxEvent, kind: str, params: dict[str, Any]) -> None:
    """Write the cause on the event."""
    event.cause_kind = kind
    event.cause_params = params


def gave_up(event: InboxEvent, kind: str, params: dict[str, Any]) -> None:
    """Write on the event that its last attempt failed for good, and why."""
    set_cause(event, "gave_up", {"attempts": event.attempts, "cause": kind, **params})


def clear_failure(event: InboxEvent) -> None:
    """Forget the cause of an earlier failure once the event applies."""
    if event.cause_kind in FAILURE_KINDS:
        set_cause(event, "", {})
