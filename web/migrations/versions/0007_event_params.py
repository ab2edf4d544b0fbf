"""events carry a kind and parameters: order event summaries, mapping issues and inbox
errors become structured, then the English columns go

Revision ID: 0007
Revises: 0006

Order events: each English summary is read back into the parameters it was written from
(the sentence forms below are the ones the code wrote up to this revision, demo data
included); a sentence of no known form is kept as is in a `text` parameter, which pages
show verbatim. Orders: `mapping_issue` is parsed into `mapping_issues`. Inbox events: the
exception name that starts `error` gives `cause_kind`. Only then are `order_events.summary`
and `orders.mapping_issue` dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Params = dict[str, Any]

# --- Mapping issues -------------------------------------------------------------------------

ISSUE_FORMS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Params]]] = [
    (
        re.compile(r"unknown shop status “(?P<label>.*)” \((?P<value>[^()]*)\)"),
        lambda m: {"kind": "status", "value": m["value"], "label": m["label"]},
    ),
    (
        re.compile(r"unknown shop status “(?P<value>.*)”"),
        lambda m: {"kind": "status", "value": m["value"], "label": ""},
    ),
    (
        re.compile(r"unknown shipping method “(?P<value>.*)”"),
        lambda m: {"kind": "carrier", "value": m["value"], "label": ""},
    ),
    (
        re.compile(r"unknown payment method “(?P<value>.*)”"),
        lambda m: {"kind": "payment_method", "value": m["value"], "label": ""},
    ),
    (
        # The demo data's wording.
        re.compile(
            r"Unknown shipping label « (?P<value>.*) »: map it to a shipping mode "
            r"in the shop's carrier settings\.?"
        ),
        lambda m: {"kind": "carrier", "value": m["value"], "label": ""},
    ),
]


def parse_issue(text: str) -> Params:
    for pattern, build in ISSUE_FORMS:
        found = pattern.fullmatch(text.strip())
        if found:
            return build(found)
    return {"kind": "text", "value": text.strip(), "label": ""}


def parse_issues(text: str) -> list[Params]:
    return [parse_issue(part) for part in text.split("; ") if part.strip()]


# --- Inbox causes ---------------------------------------------------------------------------

PREFIXES = {
    "RateLimited": "rate_limited",
    "PlatformUnavailable": "shop_unavailable",
    "AuthFailed": "auth_failed",
    "NotFoundAtShop": "not_found_at_shop",
    "BadPayload": "unreadable",
    "InvalidSignature": "invalid_signature",
    "PermanentError": "refused",
    "RetryableError": "connector_error",
    "ConnectorError": "connector_error",
}
HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
GAVE_UP_AFTER = 8  # intake's MAX_ATTEMPTS at this revision


def cause_of_error(error: str, state: str, attempts: int) -> tuple[str, Params]:
    name, _, _rest = error.partition(":")
    kind = PREFIXES.get(name.strip())
    params: Params = {"detail": error[:1000]}
    if kind is None:
        if error.lower().startswith(("unknown shop status", "unknown shipping", "unknown pay")):
            return "needs_mapping", {"issues": parse_issues(error)}
        kind = "unreadable" if state == "rejected" else "failed"
    if kind in ("shop_unavailable", "auth_failed", "connector_error"):
        found = HTTP_STATUS.search(error)
        params["status"] = int(found.group(1)) if found else None
    if kind == "rate_limited":
        params["retry_after"] = None
    if state == "parked" and attempts >= GAVE_UP_AFTER and name.strip() in PREFIXES:
        return "gave_up", {"attempts": attempts, "cause": kind, **params}
    return kind, params


# --- Order events ---------------------------------------------------------------------------

SUBJECT = r"(?:Status “(?P<status>.*)”|Comment “(?P<excerpt>.*)”)"
CHANGE_WORDS = {
    "lines": "lines",
    "delivery address": "delivery_address",
    "billing address": "billing_address",
    "shipping method": "shipping_method",
}
TOTAL_CHANGE = re.compile(r"total (?P<was>\S+) → (?P<now>\S+)")


def _words_to_code(words: str) -> str:
    return words.strip().replace(" ", "_")


def _changes(details: Params, currency: str) -> Params | None:
    changes, figures = [], {}
    for change in details.get("changes") or []:
        if not isinstance(change, str):
            return None
        total = TOTAL_CHANGE.fullmatch(change)
        if total:
            changes.append("total")
            figures = {"total_was": total["was"], "total_now": total["now"], "currency": currency}
        elif change in CHANGE_WORDS:
            changes.append(CHANGE_WORDS[change])
        elif change in CHANGE_WORDS.values():
            changes.append(change)
        else:
            return None
    return {"changes": changes, **figures} if changes else None


# (kind prefix or exact kind, pattern, what to keep from the match)
Form = tuple[str, re.Pattern[str], Callable[[re.Match[str], Params, str], Params]]


def _groups(found: re.Match[str], *names: str) -> Params:
    return {name: found[name] for name in names if found[name] is not None}


def _subject(found: re.Match[str]) -> Params:
    if found["status"] is not None:
        return {"status": found["status"]}
    return {"excerpt": found["excerpt"]}


def _reason(found: re.Match[str], details: Params) -> Params:
    # The details kept the whole reason; the sentence only an excerpt of it.
    return {} if details.get("reason") else {"reason": found["reason"]}


def _money(found: re.Match[str], currency: str | None = None) -> Params:
    return {
        "amount": found["amount"],
        "currency": currency or found["currency"],
    }


FORMS: list[Form] = [
    (
        "order.received",
        re.compile(r"Order (?P<number>.*) received from (?P<shop>.*)\."),
        lambda m, d, c: _groups(m, "number", "shop"),
    ),
    ("order.validated", re.compile(r"Order validated by hand\."), lambda m, d, c: {}),
    (
        "order.validated",
        re.compile(r"Order validated automatically \((?P<why>paid|total is zero)\)\."),
        lambda m, d, c: {"automatic": True, "why": "paid" if m["why"] == "paid" else "free"},
    ),
    (
        "order.held",
        re.compile(r"Order put on hold: (?P<reason>.*)", re.S),
        lambda m, d, c: _reason(m, d),
    ),
    ("order.released", re.compile(r"Order released from hold\."), lambda m, d, c: {}),
    ("order.preparation_started", re.compile(r"Preparation started\."), lambda m, d, c: {}),
    (
        "order.cancelled",
        re.compile(r"Order cancelled: (?P<reason>.*)", re.S),
        lambda m, d, c: _reason(m, d),
    ),
    ("order.closed", re.compile(r"Order closed\."), lambda m, d, c: {}),
    ("order.partially_shipped", re.compile(r"Order partially shipped\."), lambda m, d, c: {}),
    ("order.shipped", re.compile(r"Order shipped\."), lambda m, d, c: {}),
    ("order.delivered", re.compile(r"Order delivered\."), lambda m, d, c: {}),
    (
        "order.deleted_at_shop",
        re.compile(r"The order was deleted in the shop; Comptoir keeps it\. Check it\."),
        lambda m, d, c: {},
    ),
    (
        "inbox.stale",
        re.compile(r"An older copy of the order arrived and was ignored\."),
        lambda m, d, c: {},
    ),
    (
        "order.updated_by_shop",
        re.compile(r"The shop sent an update \(status (?P<status>.*)\)\."),
        lambda m, d, c: {"status": "" if m["status"] == "—" else m["status"]},
    ),
    (
        "order.cancel_needs_review",
        re.compile(r"The shop cancelled the order but Comptoir cannot: (?P<reason>.*)", re.S),
        lambda m, d, c: {"reason": m["reason"]},
    ),
    (
        "inbox.parked",
        re.compile(r"A delivery from the shop could not be applied: (?P<error>.*)", re.S),
        lambda m, d, c: _parked(m["error"]),
    ),
    (
        "inbox.replayed",
        re.compile(r"Delivery (?P<topic>.*) #(?P<inbox_event_id>\d+) queued again by hand\."),
        lambda m, d, c: {"topic": m["topic"], "inbox_event_id": int(m["inbox_event_id"])},
    ),
    (
        "inbox.ignored",
        re.compile(r"Delivery (?P<topic>.*) #(?P<inbox_event_id>\d+) set aside by hand\."),
        lambda m, d, c: {"topic": m["topic"], "inbox_event_id": int(m["inbox_event_id"])},
    ),
    (
        "payment.state_changed",
        re.compile(r"Payment state changed from (?P<a>[a-z ]+) to (?P<b>[a-z ]+)\."),
        lambda m, d, c: {"from": _words_to_code(m["a"]), "to": _words_to_code(m["b"])},
    ),
    (
        "payment.changed",
        re.compile(
            r"Payment (?P<external_id>.*) now (?P<amount>-?[\d.]+) (?P<currency>[A-Z]{3}) "
            r"\((?P<status>\w+)\)\."
        ),
        lambda m, d, c: {**_money(m), **_groups(m, "external_id", "status")},
    ),
    (
        "payment.captured",
        re.compile(r"Payment of (?P<amount>-?[\d.]+) EUR captured \((?P<method_label>.*)\)\."),
        lambda m, d, c: {**_money(m, "EUR"), "method_label": m["method_label"]},
    ),
    (
        "payment.received",
        re.compile(r"Payment of (?P<amount>-?[\d.]+) EUR received \((?P<method_label>.*)\)\."),
        lambda m, d, c: {**_money(m, "EUR"), "method_label": m["method_label"]},
    ),
    (
        "payment.recorded",
        re.compile(
            r"Payment of (?P<amount>-?[\d.]+) (?P<currency>[A-Z]{3}) by (?P<source>.+?) "
            r"entered by hand(?: \(ref\. (?P<reference>.*)\))?\.",
            re.S,
        ),
        lambda m, d, c: {
            **_money(m),
            "source": d.get("source") or _words_to_code(m["source"]),
            "reference": d.get("reference") or m["reference"] or "",
        },
    ),
    (
        "payment.recorded",
        re.compile(r"(?P<label>.*) of (?P<amount>-?[\d.]+) EUR recorded by hand\."),
        lambda m, d, c: {**_money(m, "EUR")},
    ),
    (
        "payment.refunded",
        re.compile(
            r"Refund of (?P<amount>-?[\d.]+) (?P<currency>[A-Z]{3}) by (?P<source>.+?) "
            r"entered by hand(?: \(ref\. (?P<reference>.*)\))?\.",
            re.S,
        ),
        lambda m, d, c: {
            **_money(m),
            "source": d.get("source") or _words_to_code(m["source"]),
            "reference": d.get("reference") or m["reference"] or "",
        },
    ),
    (
        "payment.refunded",
        re.compile(r"Refund of (?P<amount>-?[\d.]+) EUR: (?P<reason>.*)", re.S),
        lambda m, d, c: {**_money(m, "EUR"), **_reason(m, d)},
    ),
    (
        "payment.",
        re.compile(
            r"(?P<kind>Authorization|Capture|Sale|Refund|Void) of (?P<amount>-?[\d.]+) "
            r"(?P<currency>[A-Z]{3}) \((?P<status>\w+)\)\."
        ),
        lambda m, d, c: {**_money(m), "status": m["status"]},
    ),
    (
        "shipment.shipped",
        re.compile(r"Shipment (?P<shipment>\S+) shipped with (?P<carrier>.*)\."),
        lambda m, d, c: {
            "shipment": d.get("shipment") or m["shipment"],
            "carrier": "" if m["carrier"] == "carrier" else m["carrier"],
        },
    ),
    (
        "outbox.queued",
        re.compile(r"Status “(?P<status>.*)” \((?P<milestone>[a-z ]+)\) queued for (?P<shop>.*)\."),
        lambda m, d, c: {
            "kind": "status",
            "status": m["status"],
            "milestone": _words_to_code(m["milestone"]),
            "shop": m["shop"],
        },
    ),
    (
        "outbox.queued",
        re.compile(r"Comment queued for (?P<shop>.*?)(?P<private> as a private note)?\."),
        lambda m, d, c: {
            "kind": "comment",
            "shop": m["shop"],
            "customer_visible": m["private"] is None,
        },
    ),
    (
        "outbox.sent",
        re.compile(
            SUBJECT + r" (?P<done>sent|already at the shop, nothing written) \((?P<shop>.*)\)\.",
            re.S,
        ),
        lambda m, d, c: {**_subject(m), "shop": m["shop"], "written": m["done"] == "sent"},
    ),
    (
        "outbox.ignored",
        re.compile(SUBJECT + r" ignored by hand\.", re.S),
        lambda m, d, c: {**_subject(m), "by_hand": True},
    ),
    (
        "outbox.ignored",
        re.compile(SUBJECT + r" not sent: (?P<reason>.*)", re.S),
        lambda m, d, c: {**_subject(m), "reason": m["reason"]},
    ),
    (
        "outbox.dead",
        re.compile(SUBJECT + r" given up \(the shop refused it\): (?P<error>.*)", re.S),
        lambda m, d, c: {**_subject(m), "refused": True, "error": m["error"]},
    ),
    (
        "outbox.dead",
        re.compile(SUBJECT + r" given up \((?P<attempts>\d+) attempts failed\): (?P<error>.*)", re.S),
        lambda m, d, c: {
            **_subject(m),
            "refused": False,
            "attempts": int(m["attempts"]),
            "error": m["error"],
        },
    ),
    (
        "outbox.failed",
        re.compile(
            SUBJECT + r" failed \(attempt (?P<attempts>\d+)\), retrying at \S+ UTC: (?P<error>.*)",
            re.S,
        ),
        lambda m, d, c: {**_subject(m), "attempts": int(m["attempts"]), "error": m["error"]},
    ),
    (
        "outbox.retried",
        re.compile(SUBJECT + r" sent again by hand\.", re.S),
        lambda m, d, c: _subject(m),
    ),
]


def _parked(error: str) -> Params:
    name = error.partition(":")[0].strip()
    if name not in PREFIXES:
        return {}
    kind, params = cause_of_error(error, "failed", 0)
    return {"cause": kind, "cause_params": params}


def event_params(kind: str, summary: str, details: Params, currency: str) -> Params:
    """The parameters of one stored event, read back from its English summary."""
    params = dict(details)
    if kind.startswith("comment."):
        params.setdefault("excerpt", summary)
        return params
    if kind == "order.needs_mapping":
        text = summary.removeprefix("Needs mapping: ").removesuffix(".")
        if summary.startswith("Needs mapping: "):
            params["issues"] = parse_issues(text)
        else:
            params["issues"] = [parse_issue(summary)]
        params.pop("field", None)
        params.pop("value", None)
        return params
    if kind in ("order.edited_at_shop", "order.edit_needs_review"):
        changes = _changes(details, currency)
        if changes is None:
            return {**params, "text": summary}
        params.update(changes)
        return params
    for form_kind, pattern, build in FORMS:
        if not (kind == form_kind or (form_kind.endswith(".") and kind.startswith(form_kind))):
            continue
        found = pattern.fullmatch(summary)
        if found:
            parsed = build(found, details, currency)
            if kind == "inbox.parked" and not parsed:
                break
            return {**params, **parsed}
    return {**params, "text": summary}


# --- The migration --------------------------------------------------------------------------


def _json(value: Any, empty: Any) -> Any:
    if value is None:
        return empty
    if isinstance(value, str):
        return json.loads(value) if value else empty
    return value


def upgrade() -> None:
    connection = op.get_bind()
    events = sa.table(
        "order_events",
        sa.column("id", sa.Integer),
        sa.column("order_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("summary", sa.String),
        sa.column("details", sa.JSON),
    )
    orders = sa.table(
        "orders",
        sa.column("id", sa.Integer),
        sa.column("currency", sa.String),
        sa.column("mapping_issue", sa.String),
        sa.column("mapping_issues", sa.JSON),
    )
    inbox = sa.table(
        "inbox_events",
        sa.column("id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("attempts", sa.Integer),
        sa.column("error", sa.Text),
        sa.column("cause_kind", sa.String),
        sa.column("cause_params", sa.JSON),
    )
    rows = connection.execute(
        sa.select(events.c.id, events.c.kind, events.c.summary, events.c.details, orders.c.currency)
        .join(orders, orders.c.id == events.c.order_id)
        .where(events.c.summary != "")
    ).all()
    for row in rows:
        details = _json(row.details, {})
        params = event_params(row.kind, row.summary, details, row.currency or "EUR")
        connection.execute(events.update().where(events.c.id == row.id).values(details=params))

    for row in connection.execute(
        sa.select(orders.c.id, orders.c.mapping_issue, orders.c.mapping_issues).where(
            orders.c.mapping_issue != ""
        )
    ).all():
        if _json(row.mapping_issues, []):
            continue
        connection.execute(
            orders.update()
            .where(orders.c.id == row.id)
            .values(mapping_issues=parse_issues(row.mapping_issue))
        )

    for row in connection.execute(
        sa.select(inbox.c.id, inbox.c.state, inbox.c.attempts, inbox.c.error).where(
            inbox.c.error != "", inbox.c.cause_kind == ""
        )
    ).all():
        kind, params = cause_of_error(row.error, str(row.state).lower(), row.attempts or 0)
        connection.execute(
            inbox.update().where(inbox.c.id == row.id).values(cause_kind=kind, cause_params=params)
        )

    # A plain DROP COLUMN (SQLite 3.35+), not batch mode: rebuilding `orders` would drop the
    # old table, and with foreign keys on SQLite deletes what cascades from it first.
    op.drop_column("order_events", "summary")
    op.drop_column("orders", "mapping_issue")


def downgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("mapping_issue", sa.String(length=500), server_default="", nullable=False),
    )
    op.add_column(
        "order_events",
        sa.Column("summary", sa.String(length=500), server_default="", nullable=False),
    )
    # The sentences are not written back; a verbatim one is, and so are the issues' values.
    connection = op.get_bind()
    events = sa.table(
        "order_events",
        sa.column("id", sa.Integer),
        sa.column("summary", sa.String),
        sa.column("details", sa.JSON),
    )
    for row in connection.execute(sa.select(events.c.id, events.c.details)).all():
        text = _json(row.details, {}).get("text")
        if isinstance(text, str) and text:
            connection.execute(
                events.update().where(events.c.id == row.id).values(summary=text[:500])
            )
    orders = sa.table(
        "orders",
        sa.column("id", sa.Integer),
        sa.column("mapping_issue", sa.String),
        sa.column("mapping_issues", sa.JSON),
    )
    for row in connection.execute(sa.select(orders.c.id, orders.c.mapping_issues)).all():
        issues = _json(row.mapping_issues, [])
        if issues:
            text = "; ".join(f"{i.get('kind')} “{i.get('value')}”" for i in issues)
            connection.execute(
                orders.update().where(orders.c.id == row.id).values(mapping_issue=text[:500])
            )
