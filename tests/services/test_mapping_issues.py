"""An order's mapping issues as phrases: what exports and the API write in `mapping_issue`,
and what the order page translates."""

from __future__ import annotations

from web.services import mapping_issues
from web.services.mapping_issues import describe, issue_text


def test_each_kind_of_issue_reads_as_its_phrase() -> None:
    assert issue_text({"kind": "status", "value": "wc-on-hold", "label": "En attente"}) == (
        "unknown shop status “En attente” (wc-on-hold)"
    )
    assert issue_text({"kind": "carrier", "value": "dhl_express"}) == (
        "unknown shipping method “dhl_express”"
    )
    assert issue_text({"kind": "payment_method", "value": "cod", "label": "Cash"}) == (
        "unknown payment method “cod”"
    )


def test_a_status_without_a_label_of_its_own_shows_its_code_once() -> None:
    for label in (None, "", "wc-on-hold"):
        issue = {"kind": "status", "value": "wc-on-hold", "label": label}
        assert issue_text(issue) == "unknown shop status “wc-on-hold”"
    assert issue_text({"kind": "status", "value": "wc-on-hold"}) == (
        "unknown shop status “wc-on-hold”"
    )


def test_an_issue_stored_before_they_were_structured_shows_as_it_was() -> None:
    assert issue_text({"kind": "text", "value": "statut inconnu « x »"}) == "statut inconnu « x »"
    assert issue_text({"value": "statut inconnu"}) == "statut inconnu"
    assert issue_text({"kind": "tax", "value": "TVA 7 %"}) == "tax: TVA 7 %"
    assert issue_text({}) == ""


def test_the_phrases_are_translated_by_whoever_shows_them() -> None:
    french = {
        mapping_issues.ISSUE_TEXTS["carrier"]: "mode de livraison inconnu « %(value)s »",
    }

    def gettext(message: str) -> str:
        return french.get(message, message)

    issues = [
        {"kind": "carrier", "value": "dhl"},
        {"kind": "payment_method", "value": "cod"},
    ]
    assert describe(issues, gettext) == (
        "mode de livraison inconnu « dhl »; unknown payment method “cod”"
    )
    assert issue_text(issues[0], gettext) == "mode de livraison inconnu « dhl »"


def test_all_the_issues_in_one_line() -> None:
    assert describe([]) == ""
    assert describe(None) == ""  # type: ignore[arg-type]  # an order stored without any
    assert describe([{"kind": "carrier", "value": "a"}, {"kind": "carrier", "value": "b"}]) == (
        "unknown shipping method “a”; unknown shipping method “b”"
    )
