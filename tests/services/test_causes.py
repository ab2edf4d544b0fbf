"""Why an inbox event is not applied: the kind and parameters the sync log renders for each
error a connector raises, and what applying the event again forgets."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_event, make_shop
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ConnectorError,
    InvalidSignature,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    Redirected,
    TimedOut,
    TopicMismatch,
)
from web.services import causes
from web.services.causes import cause_of


@pytest.mark.parametrize(
    ("error", "kind", "params"),
    [
        (
            RateLimited("HTTP 429 from the shop", retry_after=12.5),
            "rate_limited",
            {"retry_after": 12.5, "detail": "RateLimited: HTTP 429 from the shop"},
        ),
        (
            TimedOut("no answer in 20 s"),
            "shop_unavailable",
            {"status": None, "detail": "TimedOut: no answer in 20 s"},
        ),
        (
            PlatformUnavailable("HTTP 503 Service Unavailable"),
            "shop_unavailable",
            {"status": 503, "detail": "PlatformUnavailable: HTTP 503 Service Unavailable"},
        ),
        (
            AuthFailed("HTTP 401: bad key"),
            "auth_failed",
            {"status": 401, "detail": "AuthFailed: HTTP 401: bad key"},
        ),
        (
            NotFoundAtShop("no order 9"),
            "not_found_at_shop",
            {"detail": "NotFoundAtShop: no order 9"},
        ),
        (InvalidSignature("no HMAC"), "invalid_signature", {"detail": "InvalidSignature: no HMAC"}),
        (
            TopicMismatch("products/create", "not an order"),
            "topic_mismatch",
            {"topic": "products/create", "detail": "not an order"},
        ),
        (BadPayload("order: no id"), "unreadable", {"detail": "order: no id"}),
        (Redirected("HTTP 301 to /login"), "refused", {"detail": "Redirected: HTTP 301 to /login"}),
        (
            ConnectorError("HTTP 418 teapot"),
            "connector_error",
            {"status": 418, "detail": "ConnectorError: HTTP 418 teapot"},
        ),
        (ValueError("bad"), "failed", {"detail": "ValueError: bad"}),
    ],
)
def test_each_error_has_its_cause(error: Exception, kind: str, params: dict[str, object]) -> None:
    assert cause_of(error) == (kind, params)


def test_a_long_error_is_cut_to_the_detail_length_and_a_long_topic_to_80() -> None:
    long = "x" * 2000
    assert cause_of(ValueError(long))[1]["detail"] == f"ValueError: {long}"[:1000]
    assert cause_of(PermanentError(long))[1]["detail"] == f"PermanentError: {long}"[:1000]
    assert cause_of(BadPayload(long))[1]["detail"] == long[:1000]
    kind, params = cause_of(TopicMismatch("t" * 100, long))
    assert (kind, params["topic"], params["detail"]) == ("topic_mismatch", "t" * 80, long[:1000])
    assert causes.DETAIL_MAX_LENGTH == 1000


def test_only_a_three_digit_http_status_is_read() -> None:
    assert causes.http_status("HTTP 502 from nginx") == 502
    assert causes.http_status("HTTP 5020") is None
    assert causes.http_status("XHTTP 502") is None
    assert causes.http_status("no status") is None


def test_giving_up_keeps_the_cause_and_applying_forgets_only_failures(
    db_session: Session,
) -> None:
    event = make_event(db_session, make_shop(db_session, "lyon"))
    event.attempts = 4
    causes.gave_up(event, "shop_unavailable", {"status": 503, "detail": "d"})
    assert (event.cause_kind, event.cause_params) == (
        "gave_up",
        {"attempts": 4, "cause": "shop_unavailable", "status": 503, "detail": "d"},
    )
    causes.clear_failure(event)
    assert (event.cause_kind, event.cause_params) == ("", {})
    for kind in sorted(causes.FAILURE_KINDS):
        causes.set_cause(event, kind, {"detail": "d"})
        causes.clear_failure(event)
        assert (event.cause_kind, event.cause_params) == ("", {})
    # A notice another step left on an applied event survives.
    causes.set_cause(event, "totals_mismatch", {"computed": "1.00"})
    causes.clear_failure(event)
    assert (event.cause_kind, event.cause_params) == ("totals_mismatch", {"computed": "1.00"})
