"""An order's mapping issues: what the shop sent that its settings do not map yet.

Stored structured on `Order.mapping_issues` as {"kind": "status" | "carrier" |
"payment_method", "value": the shop's code, "label": the shop's wording or ""}; the
sentences below are msgids, translated by whoever shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from web.i18n import N_

ISSUE_TEXTS = {
    "status": N_("unknown shop status “%(label)s” (%(value)s)"),
    "status_unlabelled": N_("unknown shop status “%(value)s”"),
    "carrier": N_("unknown shipping method “%(value)s”"),
    "payment_method": N_("unknown payment method “%(value)s”"),
}
SEPARATOR = "; "


def _same(message: str) -> str:
    return message


def issue_text(issue: Mapping[str, Any], gettext: Callable[[str], str] = _same) -> str:
    """One issue as a phrase; an issue of an unknown kind shows its kind and value."""
    kind = str(issue.get("kind", ""))
    value = str(issue.get("value", ""))
    label = str(issue.get("label") or "")
    if kind == "status" and (not label or label == value):
        kind = "status_unlabelled"
    if kind not in ISSUE_TEXTS:
        # "text": a sentence stored before issues were structured, shown as it was.
        return value if kind in ("", "text") else f"{kind}: {value}"
    return gettext(ISSUE_TEXTS[kind]) % {"value": value, "label": label}


def describe(issues: Iterable[Mapping[str, Any]], gettext: Callable[[str], str] = _same) -> str:
    """All the issues in one line, as the `mapping_issue` text of exports and the API."""
    return SEPARATOR.join(issue_text(issue, gettext) for issue in issues or ())
