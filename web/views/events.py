"""What happened, in the reader's language: order events, sync-log causes, mapping issues
and the audit log.

Services store a kind and its parameters; this module holds one registry per family, kind →
message with named placeholders, and renders a message with its values formatted for the
reader's locale (amounts with their currency, states through the labels, times in the desk's
time zone). Words a person typed (a reason, a comment) are parameters shown as typed. A
technical text (an error from the shop) is kept apart as the rendering's `detail`, which pages
show in monospace. An unknown kind renders as its kind and parameters, never as an error.

To add a kind: one entry in EVENTS (or CAUSES, or AUDIT), its msgid marked with N_, then the
catalogues.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.lists import format_list
from flask import Flask
from flask_babel import format_currency, format_datetime, format_decimal, get_locale, gettext

from web.i18n import N_
from web.services import mapping_issues
from web.views.labels import COMPANY_FIELD_LABELS, KIND_LABELS, STATE_LABELS

Params = Mapping[str, Any]
Format = Callable[[Any, Params], str]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
MISSING = "—"
# Parameters that say how or where, not what: left out when an unknown kind is shown.
TECHNICAL = frozenset(
    {"via", "message_id", "inbox_event_id", "comment_id", "transaction_id", "shipment_id"}
)


# --- Formatting one value ------------------------------------------------------------------


def money(value: Any, params: Params) -> str:
    """An amount stored as a string, with the currency stored beside it."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return format_currency(amount, str(params.get("currency") or "EUR"))


def number(value: Any, params: Params) -> str:
    try:
        return format_decimal(Decimal(str(value)).normalize(), "#,##0.###")
    except (InvalidOperation, ValueError):
        return str(value)


def state(value: Any, params: Params) -> str:
    text = STATE_LABELS.get(str(value)) or KIND_LABELS.get(str(value))
    return gettext(text) if text is not None else str(value)


def translated(value: Any, params: Params | None = None) -> str:
    """A msgid a service stored (a refusal reason, a field error), in the reader's language.

    Plain text, which templates escape: Jinja's `_()` would return markup, so a stored text
    that is not a msgid would reach the page as HTML. Templates use `value | translated`.
    """
    text = str(value or "")
    return gettext(text) if text else ""


def moment(value: Any, params: Params) -> str:
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return format_datetime(when, "short")


CHANGES = {
    "lines": N_("lines"),
    "delivery_address": N_("delivery address"),
    "billing_address": N_("billing address"),
    "shipping_method": N_("shipping method"),
}


def changes(value: Any, params: Params) -> str:
    """What the shop changed, as a list in the reader's language."""
    parts = []
    for change in value or ():
        if change == "total":
            parts.append(
                gettext(
                    "total %(was)s → %(now)s",
                    was=money(params.get("total_was"), params),
                    now=money(params.get("total_now"), params),
                )
            )
        else:
            parts.append(translated(CHANGES.get(change, change)))
    return format_list(parts, locale=get_locale()) if parts else MISSING


def issues(value: Any, params: Params) -> str:
    return mapping_text(value or [])


def nested_cause(value: Any, params: Params) -> str:
    return render_cause(str(value or ""), params.get("cause_params") or {}).text


def inner_cause(value: Any, params: Params) -> str:
    """The cause inside a "gave up" cause, whose parameters sit beside its kind."""
    return render_cause(str(value or ""), params).text


def subject(value: Any, params: Params) -> str:
    """What an outbox message carries: a status or a comment."""
    if params.get("kind") == "status" or (params.get("status") and not params.get("excerpt")):
        return gettext("Status “%(status)s”", status=params.get("status") or MISSING)
    if params.get("kind") == "comment" or params.get("excerpt"):
        return gettext("Comment “%(excerpt)s”", excerpt=params.get("excerpt") or "…")
    if params.get("kind") == "shipment":
        number = params.get("shipment") or params.get("number") or MISSING
        return gettext("Shipment %(shipment)s", shipment=number)
    if params.get("kind") == "document":
        reference = params.get("document") or params.get("reference") or MISSING
        return gettext("Document link %(document)s", document=reference)
    return str(params.get("kind") or gettext("Update"))


# --- Messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A msgid with named placeholders, how to format some of them, and which one is detail.

    `verbatim` names a parameter shown as is instead of a sentence (a comment's text).
    """

    msgid: str = ""
    formats: Mapping[str, Format] = field(default_factory=dict)
    detail: str = ""
    verbatim: str = ""

    def placeholders(self) -> set[str]:
        return set(PLACEHOLDER.findall(self.msgid))


Picker = Callable[[Params], Message]
Entry = Message | Picker


@dataclass(frozen=True)
class Rendered:
    """A message in the reader's language; `detail` is technical text shown apart."""

    text: str
    detail: str = ""

    @property
    def full(self) -> str:
        return f"{self.text} — {self.detail}" if self.detail else self.text

    def __str__(self) -> str:
        return self.full


MONEY = {"amount": money}
OUTBOX = {"subject": subject}


def _validated(params: Params) -> Message:
    if not params.get("automatic"):
        return Message(N_("Order validated by hand."))
    if params.get("why") == "free":
        return Message(N_("Order validated automatically (total is zero)."))
    return Message(N_("Order validated automatically (paid)."))


def _updated(params: Params) -> Message:
    if params.get("status"):
        return Message(N_("The shop sent an update (status %(status)s)."))
    return Message(N_("The shop sent an update."))


def _manual(by_hand: str, by_hand_ref: str, by_shop: str, plain: str) -> Picker:
    def pick(params: Params) -> Message:
        formats = {**MONEY, "source": state}
        if params.get("source") and params.get("reference"):
            return Message(by_hand_ref, formats)
        if params.get("source"):
            return Message(by_hand, formats)
        if params.get("reason"):
            return Message(by_shop, formats)
        return Message(plain, formats)

    return pick


def _shipped(params: Params) -> Message:
    if params.get("carrier") and params.get("tracking"):
        return Message(N_("Shipment %(shipment)s shipped with %(carrier)s, tracking %(tracking)s."))
    if params.get("carrier"):
        return Message(N_("Shipment %(shipment)s shipped with %(carrier)s."))
    return Message(N_("Shipment %(shipment)s shipped."))


def _shipment_created(params: Params) -> Message:
    if params.get("carrier"):
        return Message(
            N_("Shipment %(shipment)s prepared: %(items)s item(s) with %(carrier)s."),
            {"items": number},
        )
    return Message(N_("Shipment %(shipment)s prepared: %(items)s item(s)."), {"items": number})


def _shipment_cancelled(params: Params) -> Message:
    # The reason is typed by a person: shown as typed.
    if params.get("reason"):
        return Message(N_("Shipment %(shipment)s cancelled: %(reason)s"))
    return Message(N_("Shipment %(shipment)s cancelled."))


def _parcel_added(params: Params) -> Message:
    if params.get("tracking"):
        return Message(N_("Parcel with tracking %(tracking)s added to shipment %(shipment)s."))
    return Message(N_("Parcel added to shipment %(shipment)s."))


def _received_from_shop(params: Params) -> Message:
    if params.get("tracking"):
        return Message(
            N_("Shipment %(shipment)s made in the shop: %(items)s item(s), tracking %(tracking)s."),
            {"items": number},
        )
    return Message(
        N_("Shipment %(shipment)s made in the shop: %(items)s item(s)."), {"items": number}
    )


def _tracking_changed(params: Params) -> Message:
    if params.get("previous"):
        return Message(
            N_("Tracking of shipment %(shipment)s changed from %(previous)s to %(tracking)s.")
        )
    return Message(N_("Tracking %(tracking)s added to shipment %(shipment)s."))


def _queued(params: Params) -> Message:
    if params.get("kind") == "comment" and params.get("customer_visible") is False:
        return Message(N_("Comment queued for %(shop)s as a private note."))
    if params.get("kind") == "comment":
        return Message(N_("Comment queued for %(shop)s."))
    if params.get("kind") == "shipment":
        return Message(N_("Shipment %(shipment)s queued for %(shop)s."))
    if params.get("kind") == "document":
        return Message(N_("Document link %(document)s queued for %(shop)s."))
    return Message(
        N_("Status “%(status)s” (%(milestone)s) queued for %(shop)s."), {"milestone": state}
    )


def _sent(params: Params) -> Message:
    if params.get("written") is False:
        return Message(N_("%(subject)s already at the shop, nothing written (%(shop)s)."), OUTBOX)
    return Message(N_("%(subject)s sent (%(shop)s)."), OUTBOX)


def _ignored(params: Params) -> Message:
    if params.get("reason"):
        return Message(N_("%(subject)s not sent: %(reason)s"), {**OUTBOX, "reason": translated})
    return Message(N_("%(subject)s ignored by hand."), OUTBOX)


def _dead(params: Params) -> Message:
    if params.get("refused"):
        return Message(N_("%(subject)s given up: the shop refused it."), OUTBOX, detail="error")
    return Message(N_("%(subject)s given up after %(attempts)s attempts."), OUTBOX, detail="error")


def _awaiting_details(params: Params) -> Message:
    if params.get("paid") or params.get("refunded"):
        return Message(
            N_(
                "Payment shown as the shop's order states it (paid %(paid)s, refunded "
                "%(refunded)s) until its transactions are read from the shop."
            ),
            {"paid": money, "refunded": money},
        )
    return Message(N_("The order's payments will be read from the shop."))


def _invoice_issued(params: Params) -> Message:
    if params.get("difference"):
        return Message(
            N_(
                "Invoice %(reference)s issued (%(total)s); the order's invoices differ from "
                "the shop's total %(shop_total)s by %(difference)s."
            ),
            {"total": money, "shop_total": money, "difference": money},
        )
    return Message(N_("Invoice %(reference)s issued (%(total)s)."), {"total": money})


def _invoice_refused(params: Params) -> Message:
    if params.get("fields"):
        return Message(
            N_("No invoice issued: %(reason)s (%(fields)s)."),
            {"reason": translated, "fields": company_fields},
        )
    return Message(N_("No invoice issued: %(reason)s."), {"reason": translated})


def _credit_note_proposed(params: Params) -> Message:
    if params.get("cancel"):
        return Message(
            N_("Credit note proposed: the order was cancelled; cancel invoice %(invoices)s.")
        )
    return Message(
        N_("Credit note proposed: %(amount)s refunded and not credited (invoice %(invoices)s)."),
        MONEY,
    )


def _payment(msgid: str) -> Message:
    return Message(msgid, {**MONEY, "status": state})


EVENTS: dict[str, Entry] = {
    # The order's life
    "order.received": Message(N_("Order %(number)s received from %(shop)s.")),
    "order.imported": Message(N_("Order imported from the shop.")),
    "order.needs_mapping": Message(N_("Needs mapping: %(issues)s."), {"issues": issues}),
    "order.validated": _validated,
    # A reason is typed by a person, or is a msgid Comptoir wrote for the shop's own change.
    "order.held": Message(N_("Order put on hold: %(reason)s"), {"reason": translated}),
    "order.released": Message(N_("Order released from hold.")),
    "order.preparation_started": Message(N_("Preparation started.")),
    "order.cancelled": Message(N_("Order cancelled: %(reason)s"), {"reason": translated}),
    "order.closed": Message(N_("Order closed.")),
    "order.partially_shipped": Message(N_("Order partially shipped.")),
    "order.shipped": Message(N_("Order shipped.")),
    "order.delivered": Message(N_("Order delivered.")),
    # What the shop sent
    "order.updated_by_shop": _updated,
    "order.edited_at_shop": Message(N_("Edited in the shop: %(changes)s."), {"changes": changes}),
    "order.edit_needs_review": Message(
        N_(
            "Edited in the shop after preparation started, not applied: %(changes)s. "
            "Check with the warehouse."
        ),
        {"changes": changes},
    ),
    "order.cancel_needs_review": Message(
        N_("The shop cancelled the order but Comptoir cannot: %(reason)s"),
        {"reason": translated},
    ),
    "order.deleted_at_shop": Message(
        N_("The order was deleted in the shop; Comptoir keeps it. Check it.")
    ),
    "inbox.stale": Message(N_("An older copy of the order arrived and was ignored.")),
    "inbox.parked": Message(
        N_("A delivery from the shop (%(topic)s) could not be applied: %(cause)s"),
        {"cause": nested_cause},
        detail="cause_params.detail",
    ),
    "inbox.replayed": Message(N_("Delivery %(topic)s #%(inbox_event_id)s queued again by hand.")),
    "inbox.ignored": Message(N_("Delivery %(topic)s #%(inbox_event_id)s set aside by hand.")),
    # Documents
    "delivery_note.issued": Message(
        N_("Delivery note %(reference)s issued for shipment %(shipment)s.")
    ),
    "invoice.issued": _invoice_issued,
    "invoice.refused": _invoice_refused,
    "credit_note.issued": Message(
        N_("Credit note %(reference)s issued on invoice %(corrects)s: %(total)s."),
        {"total": money},
    ),
    "credit_note.proposed": _credit_note_proposed,
    # Money
    "payment.state_changed": Message(
        N_("Payment state changed from %(from)s to %(to)s."), {"from": state, "to": state}
    ),
    "payment.changed": _payment(N_("Payment %(external_id)s now %(amount)s (%(status)s).")),
    "payment.authorization": _payment(N_("Authorization of %(amount)s (%(status)s).")),
    "payment.capture": _payment(N_("Capture of %(amount)s (%(status)s).")),
    "payment.sale": _payment(N_("Sale of %(amount)s (%(status)s).")),
    "payment.refund": _payment(N_("Refund of %(amount)s (%(status)s).")),
    "payment.void": _payment(N_("Void of %(amount)s (%(status)s).")),
    "payment.awaiting_details": _awaiting_details,
    "payment.details_received": Message(
        N_("Payment details read from the shop: %(count)s transaction(s)."), {"count": number}
    ),
    "order.totals_mismatch": Message(
        N_(
            "The lines, shipping and discounts add up to %(computed)s but the shop's total is "
            "%(stated)s. Comptoir kept the shop's figures."
        ),
        {"computed": money, "stated": money},
    ),
    "payment.received": Message(N_("Payment of %(amount)s received (%(method_label)s)."), MONEY),
    "payment.captured": Message(N_("Payment of %(amount)s captured (%(method_label)s)."), MONEY),
    "payment.recorded": _manual(
        N_("Payment of %(amount)s entered by hand (%(source)s)."),
        N_("Payment of %(amount)s entered by hand (%(source)s, ref. %(reference)s)."),
        N_("Payment of %(amount)s: %(reason)s"),
        N_("Payment of %(amount)s entered by hand."),
    ),
    "payment.refunded": _manual(
        N_("Refund of %(amount)s entered by hand (%(source)s)."),
        N_("Refund of %(amount)s entered by hand (%(source)s, ref. %(reference)s)."),
        N_("Refund of %(amount)s: %(reason)s"),
        N_("Refund of %(amount)s."),
    ),
    # Shipping
    "shipment.created": _shipment_created,
    "shipment.packed": Message(N_("Shipment %(shipment)s packed.")),
    "shipment.shipped": _shipped,
    "shipment.delivered": Message(N_("Shipment %(shipment)s delivered.")),
    "shipment.cancelled": _shipment_cancelled,
    "shipment.parcel_added": _parcel_added,
    "shipment.tracking_changed": _tracking_changed,
    "shipment.received_from_shop": _received_from_shop,
    "shipment.tracking_from_shop": Message(
        N_("The shop added tracking %(tracking)s to shipment %(shipment)s.")
    ),
    "shipment.cancelled_in_shop": Message(N_("Shipment %(shipment)s cancelled in the shop.")),
    "shipment.shop_extra": Message(
        N_("A shipment made in the shop (%(external_id)s) was not taken in: %(reason)s."),
        {"reason": translated},
    ),
    "order.fulfilment_withdrawn": Message(
        N_("A shipped shipment was cancelled: shipping state back to %(to)s."), {"to": state}
    ),
    # Comments: the words as written
    "comment.customer": Message(verbatim="excerpt"),
    "comment.internal": Message(verbatim="excerpt"),
    "comment.edited": Message(verbatim="excerpt"),
    "comment.deleted": Message(verbatim="excerpt"),
    # Telling the shop
    "outbox.queued": _queued,
    "outbox.sent": _sent,
    "outbox.ignored": _ignored,
    "outbox.dead": _dead,
    "outbox.failed": Message(
        N_("%(subject)s failed (attempt %(attempts)s), retrying at %(next_attempt_at)s."),
        {**OUTBOX, "next_attempt_at": moment},
        detail="error",
    ),
    "outbox.retried": Message(N_("%(subject)s sent again by hand."), OUTBOX),
}


def _unavailable(params: Params) -> Message:
    if params.get("status"):
        return Message(N_("The shop answered with an error (HTTP %(status)s)."), detail="detail")
    return Message(N_("The shop could not be reached."), detail="detail")


def _rate_limited(params: Params) -> Message:
    if params.get("retry_after"):
        return Message(
            N_("The shop asked Comptoir to slow down; it can try again after %(retry_after)s s."),
            {"retry_after": number},
            detail="detail",
        )
    return Message(N_("The shop asked Comptoir to slow down."), detail="detail")


CAUSES: dict[str, Entry] = {
    "shop_unavailable": _unavailable,
    "rate_limited": _rate_limited,
    "auth_failed": Message(
        N_("The shop refused Comptoir's credentials: check the shop's connection settings."),
        detail="detail",
    ),
    "not_found_at_shop": Message(N_("The shop does not know this order."), detail="detail"),
    "unreadable": Message(N_("The shop sent something Comptoir cannot read."), detail="detail"),
    "topic_mismatch": Message(
        N_(
            "Refused, nothing applied: the topic %(topic)s does not match the signed body, "
            "or is not one Comptoir handles."
        ),
        detail="detail",
    ),
    "invalid_signature": Message(
        N_("The delivery's signature does not match the shop's webhook secret."),
        detail="detail",
    ),
    "refused": Message(N_("The shop refused the request."), detail="detail"),
    "failed": Message(N_("The delivery could not be applied."), detail="detail"),
    "connector_error": Message(N_("The shop answered with an error."), detail="detail"),
    "gave_up": Message(
        N_("Given up after %(attempts)s attempts. %(cause)s"),
        {"cause": inner_cause},
        detail="detail",
    ),
    "totals_mismatch": Message(
        N_(
            "Applied, with a notice: the lines, shipping and discounts add up to %(computed)s "
            "but the shop's total is %(stated)s."
        ),
        {"computed": money, "stated": money},
    ),
    "needs_mapping": Message(
        N_("The order needs mapping: %(issues)s."), {"issues": issues}, detail="detail"
    ),
}


def _throttled(params: Params) -> Message:
    formats = {"wait_seconds": number}
    if params.get("scope") == "address":
        return Message(
            N_(
                "Logins from %(address)s slowed down after %(failures)s failed attempts (the "
                "last one for %(email)s): the next one is heard in %(wait_seconds)s s."
            ),
            formats,
        )
    if params.get("scope") == "device":
        return Message(
            N_(
                "Logins to %(email)s from one known device slowed down after %(failures)s "
                "failed attempts: the next one is heard in %(wait_seconds)s s."
            ),
            formats,
        )
    return Message(
        N_(
            "Logins to %(email)s slowed down after %(failures)s failed attempts: the next one "
            "is heard in %(wait_seconds)s s."
        ),
        formats,
    )


def company_field(key: Any) -> str:
    text = COMPANY_FIELD_LABELS.get(str(key))
    return str(text) if text is not None else str(key)


def company_fields(value: Any, params: Params | None = None) -> str:
    """Company settings (keys) by their names on the settings page, as a list in the
    reader's language: which changed, or which an invoice misses."""
    names = [company_field(key) for key in value or ()]
    return format_list(names, locale=get_locale()) if names else MISSING


def company_changes(value: Any, params: Params) -> str:
    """Each identity field that changed, with its old and new value."""
    parts = [
        f"{company_field(change.get('field'))} {change.get('old') or MISSING} → "
        f"{change.get('new') or MISSING}"
        for change in value or ()
        if isinstance(change, Mapping)
    ]
    return "; ".join(parts) if parts else MISSING


AUDIT: dict[str, Entry] = {
    "login.throttled": _throttled,
    "session.ended_everywhere": Message(N_("Every session of %(email)s ended.")),
    "password.changed": Message(N_("Password of %(email)s changed; its sessions ended.")),
    "user.deactivated": Message(N_("%(email)s deactivated; its sessions ended.")),
    "api_token.created": Message(N_("API token “%(label)s” created for %(email)s.")),
    "api_token.revoked": Message(N_("API token “%(label)s” of %(email)s revoked.")),
    "shop.url_changed": Message(
        N_(
            "Address of shop %(shop)s changed from %(old_url)s to %(new_url)s; its stored "
            "credentials were cleared."
        )
    ),
    "shipping_mode.tracking_url_changed": Message(
        N_("Tracking link of shipping mode %(mode)s changed from “%(old_url)s” to “%(new_url)s”.")
    ),
    "company.identity_changed": Message(
        N_("Company identity or bank details changed: %(changes)s."),
        {"changes": company_changes},
    ),
    "company.settings_changed": Message(
        N_("Company settings changed: %(fields)s."), {"fields": company_fields}
    ),
    "company.logo_changed": Message(
        N_("Company logo replaced (%(mime_type)s, %(size)s bytes)."), {"size": number}
    ),
    "company.logo_removed": Message(N_("Company logo removed.")),
    "dead_letter.replayed": Message(
        N_("Dead letter %(message_id)s of the %(queue)s queue sent back to its queue.")
    ),
    "dead_letter.dismissed": Message(
        N_("Dead letter %(message_id)s of the %(queue)s queue set aside.")
    ),
}


# --- Rendering -----------------------------------------------------------------------------


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return MISSING


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def _unknown(kind: str, params: Params) -> Rendered:
    if params.get("text"):
        return Rendered(str(params["text"]))
    shown = [f"{name}: {_shown(value)}" for name, value in params.items() if name not in TECHNICAL]
    return Rendered(kind + (f" ({'; '.join(shown)})" if shown else ""))


def _lookup(params: Params, path: str) -> str:
    value: Any = params
    for name in path.split(".") if path else ():
        value = value.get(name) if isinstance(value, Mapping) else None
    return str(value) if path and value else ""


def _render(registry: Mapping[str, Entry], kind: str, params: Params | None) -> Rendered:
    params = dict(params or {})
    entry = registry.get(kind)
    if entry is None:
        return _unknown(kind, params)
    message = entry if isinstance(entry, Message) else entry(params)
    detail = _lookup(params, message.detail)
    if message.verbatim:
        return Rendered(str(params.get(message.verbatim) or params.get("text") or ""))
    if params.get("text"):
        # A row written before events carried parameters, whose sentence had no known form:
        # that sentence, as it was stored.
        return Rendered(str(params["text"]), detail)
    needed = message.placeholders()
    values = _Values()
    for name in needed:
        if name in message.formats:
            values[name] = message.formats[name](params.get(name), params)
        elif params.get(name) not in (None, ""):
            values[name] = _shown(params[name])
    try:
        return Rendered(gettext(message.msgid) % values, detail)
    except (KeyError, TypeError, ValueError):
        return _unknown(kind, params)


def render_event(kind: str, params: Params | None) -> Rendered:
    """An order event in the reader's language."""
    return _render(EVENTS, kind, params)


def render_cause(kind: str, params: Params | None) -> Rendered:
    """Why an inbound event is not applied, in the reader's language."""
    return _render(CAUSES, kind, params)


def render_audit(kind: str, params: Params | None) -> Rendered:
    """An audit-log entry in the reader's language."""
    return _render(AUDIT, kind, params)


def mapping_text(items: Any) -> str:
    """An order's mapping issues, in the reader's language."""
    return mapping_issues.describe(items or [], gettext)


def describe_message(message: Any) -> str:
    """What an outbox message carries, for the sync issues page."""
    payload = dict(message.payload or {})
    return subject(None, {"kind": message.kind, **payload, "excerpt": _excerpt(payload)})


def _excerpt(payload: Mapping[str, Any]) -> str:
    text = str(payload.get("text") or "")
    return text if len(text) <= 60 else text[:59] + "…"


def register(app: Flask) -> None:
    """Make the renderers available to every template."""
    app.add_template_global(render_event)
    app.add_template_global(render_cause)
    app.add_template_global(describe_message)
    app.add_template_filter(mapping_text)
    app.add_template_filter(translated)
    app.add_template_filter(company_fields)
