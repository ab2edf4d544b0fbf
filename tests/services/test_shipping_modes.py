"""Shipping modes: tracking links that a hostile tracking number cannot bend, the templates an
admin may store, and the rules of adding, changing and deactivating a mode."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_order, make_shop
from web.models import ShippingMode
from web.models.enums import CommercialState
from web.services import shipments, shipping_modes, shop_settings
from web.services.errors import ValidationFailed
from web.services.shipping_modes import SHIPPING_MODES, example_url, template_error
from web.services.timeline import Actor

MONDIAL = (
    "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition={tracking}&codePostal={postcode}"
)


def link(template: str, tracking: str, postcode: str = "") -> str:
    return ShippingMode(tracking_url_template=template).tracking_url(tracking, postcode)


# --- Filling a template ------------------------------------------------------------------------


def test_a_hostile_tracking_number_stays_one_query_value() -> None:
    url = link("https://track.example.fr/suivi?code={tracking}&lang=fr", "A B/../?x=1&y")
    assert url == "https://track.example.fr/suivi?code=A%20B%2F..%2F%3Fx%3D1%26y&lang=fr"
    parts = urlsplit(url)
    assert (parts.hostname, parts.path) == ("track.example.fr", "/suivi")
    assert parse_qs(parts.query) == {"code": ["A B/../?x=1&y"], "lang": ["fr"]}


@pytest.mark.parametrize(
    "tracking",
    [
        "../../admin",
        "x#fragment",
        "@evil.example",
        "//evil.example/",
        "javascript:alert(1)",
        "{postcode}",
        "%2F",
        "é 雪",
    ],
)
def test_no_tracking_number_changes_the_host_or_the_path(tracking: str) -> None:
    url = link("https://trace.dpd.fr/fr/trace/{tracking}", tracking)
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert parts.netloc == "trace.dpd.fr"
    assert parts.path.startswith("/fr/trace/") and parts.path.count("/") == 3
    assert (parts.query, parts.fragment) == ("", "")


def test_the_postcode_is_filled_and_encoded_too() -> None:
    assert link(MONDIAL, "12345678", "75011") == (
        "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition=12345678&codePostal=75011"
    )
    url = link(MONDIAL, "12345678", "75 011&x=#")
    assert parse_qs(urlsplit(url).query) == {
        "numeroExpedition": ["12345678"],
        "codePostal": ["75 011&x=#"],
    }
    # Without a postcode the parameter stays, empty: the page asks for it.
    assert link(MONDIAL, " 12345678 ").endswith("numeroExpedition=12345678&codePostal=")


def test_no_link_without_a_number_or_a_template() -> None:
    assert link("https://trace.dpd.fr/fr/trace/{tracking}", "  ") == ""
    assert link("", "6A123") == ""


@pytest.mark.parametrize(
    "template",
    [
        "javascript:alert(document.cookie)//{tracking}",
        "data:text/html,<script>alert(1)</script>{tracking}",
        "/suivi/{tracking}",
        "https://{tracking}.evil.example/",
        "https://user@evil.example/{tracking}",
        " javascript:alert(1)//{tracking}",
    ],
)
def test_a_stored_template_that_is_not_a_web_address_makes_no_link(template: str) -> None:
    # Rows written before the rules, or straight into the database, still make no such link.
    assert link(template, "6A123") == ""


# --- Which templates an admin may store --------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "https://www.laposte.fr/outils/suivre-vos-envois?code={tracking}",
        "http://tracking.example.fr/{tracking}",
        "HTTPS://Track.Example.fr/{tracking}?cp={postcode}",
        MONDIAL,
        "",
    ],
)
def test_web_addresses_with_the_tracking_number_are_accepted(template: str) -> None:
    assert template_error(template) is None


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("javascript:alert(1)//{tracking}", "https://"),
        ("data:text/html;base64,PHNjcmlwdD4={tracking}", "https://"),
        ("ftp://files.example.fr/{tracking}", "https://"),
        ("/suivi?code={tracking}", "https://"),
        ("//evil.example/{tracking}", "https://"),
        ("https:evil.example/{tracking}", "https://"),
        ("https:///suivi/{tracking}", "host"),
        ("https://{tracking}.example.fr/", "host"),
        ("https://example.fr:{postcode}/{tracking}", "host"),
        ("https://laposte.fr@evil.example/{tracking}", "host"),
        ("https://example.fr/{foo}/{tracking}", "placeholders"),
        ("https://example.fr/{Tracking}", "placeholders"),
        ("https://example.fr/{tracking", "Braces"),
        ("https://example.fr/{{tracking}}", "Braces"),
        ("https://example.fr/suivi", "{tracking}"),
        ("https://example.fr/suivi?cp={postcode}", "{tracking}"),
        ("https://example.fr/ {tracking}", "space"),
        ("https://example.fr/\n{tracking}", "space"),
        ("https://example.fr/" + "x" * 500 + "{tracking}", "too long"),
    ],
)
def test_other_templates_are_refused_with_the_reason(template: str, why: str) -> None:
    problem = template_error(template)
    assert problem is not None and why in problem


def test_every_seeded_mode_passes_the_rules_and_links() -> None:
    assert len(SHIPPING_MODES) >= 7
    for spec in SHIPPING_MODES:
        assert template_error(spec.template) is None, spec.code
        assert example_url(spec.template).startswith("https://"), spec.code
        fields = {
            "name": spec.name,
            "carrier": spec.carrier,
            "service": spec.service,
            "tracking_url_template": spec.template,
            **{f"code_{platform}": code for platform, code in spec.codes.items()},
        }
        assert shipping_modes.clean_fields(fields)["carrier_codes"] == spec.codes, spec.code


def test_the_seeded_modes_stay(db_session: Session) -> None:
    seeded = shipping_modes.ensure_default_shipping_modes(db_session)
    assert {"colissimo", "colissimo_relais", "mondial_relay", "chronopost", "ups"} <= set(seeded)
    assert seeded["mondial_relay"].is_relay_point
    assert seeded["mondial_relay"].carrier_codes["prestashop"] == (
        "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition=@"
    )


# --- Adding, changing, deactivating ------------------------------------------------------------


def form(**changes: Any) -> dict[str, Any]:
    values = {
        "code": "relais_colis",
        "name": "Relais Colis",
        "carrier": "Relais Colis",
        "service": "Relais",
        "is_relay_point": "1",
        "tracking_url_template": (
            "https://service.relaiscolis.com/wssuivicoliscritere/PageSuivi.aspx?Ref={tracking}"
        ),
        "code_shopify": "Relais Colis",
        "code_woocommerce": "Relais Colis",
        "code_magento": "custom",
    }
    values.update(changes)
    return values


def test_a_new_mode_gets_its_prestashop_link_from_the_template(db_session: Session) -> None:
    mode = shipping_modes.create_mode(db_session, form())
    assert mode.is_active and mode.is_relay_point
    assert mode.carrier_codes == {
        "shopify": "Relais Colis",
        "woocommerce": "Relais Colis",
        "prestashop": "https://service.relaiscolis.com/wssuivicoliscritere/PageSuivi.aspx?Ref=@",
        "magento": "custom",
    }
    assert mode.tracking_url("RC 1/2") == (
        "https://service.relaiscolis.com/wssuivicoliscritere/PageSuivi.aspx?Ref=RC%201%2F2"
    )
    assert shipping_modes.prestashop_url("https://x.fr/s?cp={postcode}&n={tracking}") == (
        "https://x.fr/s?n=@"
    )


def test_every_refusal_is_reported_at_once(db_session: Session) -> None:
    shipping_modes.ensure_default_shipping_modes(db_session)
    with pytest.raises(ValidationFailed) as refused:
        shipping_modes.create_mode(
            db_session,
            form(
                code="colissimo",
                name=" ",
                tracking_url_template="javascript:alert(1)//{tracking}",
                code_magento="Not A Code",
                code_prestashop="javascript:alert(1)",
            ),
        )
    assert set(refused.value.errors) == {
        "code",
        "name",
        "tracking_url_template",
        "code_magento",
        "code_prestashop",
    }
    assert "already" in refused.value.errors["code"]
    assert refused.value.errors["code_magento"] == (
        "Lowercase letters, digits and _ only (custom, ups, dhl…)."
    )
    assert refused.value.errors["code_prestashop"] == (
        "PrestaShop needs the carrier's https:// link, with @ where the number goes."
    )


def test_an_edit_refused_names_its_fields_under_one_message(db_session: Session) -> None:
    mode = shipping_modes.create_mode(db_session, form())
    with pytest.raises(ValidationFailed) as refused:
        shipping_modes.update_mode(db_session, mode, form(carrier="C" * 81, service="S" * 81))
    assert str(refused.value) == "Check the highlighted fields."
    assert refused.value.errors == {
        "carrier": "This value is too long.",
        "service": "This value is too long.",
    }
    assert mode.carrier == "Relais Colis"


def test_the_edit_form_shows_each_platforms_code(db_session: Session) -> None:
    colissimo = shipping_modes.ensure_default_shipping_modes(db_session)["colissimo"]
    values = shipping_modes.form_values(colissimo)
    assert (values["code"], values["name"]) == ("colissimo", "Colissimo Domicile")
    assert {key: value for key, value in values.items() if key.startswith("code_")} == {
        "code_shopify": "Colissimo",
        "code_woocommerce": "colissimo",
        "code_prestashop": "https://www.laposte.fr/outils/suivre-vos-envois?code=@",
        "code_magento": "custom",
    }


def test_a_postcode_in_the_links_path_is_left_out_of_prestashops_link() -> None:
    assert shipping_modes.prestashop_url("https://t.example/fr/{postcode}/{tracking}") == (
        "https://t.example/fr//@"
    )


def test_a_refused_template_shows_no_example_link() -> None:
    assert example_url("ftp://t.example/{tracking}") == ""
    assert example_url("https://t.example/{tracking}") == "https://t.example/6A12345678901"


@pytest.mark.parametrize("code", ["", "Colissimo", "colis simo", "-x", "é", "x" * 41, "a/b"])
def test_a_code_is_a_short_slug(db_session: Session, code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        shipping_modes.create_mode(db_session, form(code=code))
    assert set(refused.value.errors) == {"code"}


def test_an_edit_keeps_the_code_and_checks_the_template(db_session: Session) -> None:
    mode = shipping_modes.create_mode(db_session, form())
    shipping_modes.update_mode(
        db_session,
        mode,
        form(code="changed", name="Relais Colis Max", tracking_url_template="", is_relay_point=""),
    )
    assert (mode.code, mode.name, mode.is_relay_point) == (
        "relais_colis",
        "Relais Colis Max",
        False,
    )
    assert mode.tracking_url("123") == ""
    with pytest.raises(ValidationFailed):
        shipping_modes.update_mode(
            db_session, mode, form(tracking_url_template="http://evil.example/{foo}")
        )


def test_deactivated_modes_leave_the_choices_and_come_back(db_session: Session) -> None:
    seeded = shipping_modes.ensure_default_shipping_modes(db_session)
    gls = seeded["gls"]
    shipping_modes.set_active(db_session, gls, False)
    assert gls not in shipping_modes.active_modes(db_session)
    assert gls not in shop_settings.shipping_modes(db_session)
    assert shipping_modes.active_mode(db_session, "gls") is None
    rows = shipping_modes.list_modes(db_session)
    assert rows[-1].mode is gls  # inactive last
    assert [row.mode for row in shipping_modes.list_modes(db_session, "inactive")] == [gls]
    assert gls not in [row.mode for row in shipping_modes.list_modes(db_session, "active")]
    shipping_modes.set_active(db_session, gls, True)
    assert shipping_modes.active_mode(db_session, "gls") is gls


def test_the_settings_page_counts_the_shipments_of_each_mode(db_session: Session) -> None:
    seeded = shipping_modes.ensure_default_shipping_modes(db_session)
    order = make_order(
        db_session,
        make_shop(db_session),
        commercial_state=CommercialState.VALIDATED,
        shipping_mode=seeded["dpd"],
    )
    shipments.ship_everything(db_session, order, Actor.system(), "6A1")
    used = {row.mode.code: row.shipments for row in shipping_modes.list_modes(db_session)}
    assert used["dpd"] == 1
    assert used["colissimo"] == used["gls"] == 0


def test_a_shop_cannot_map_to_an_inactive_mode_but_keeps_its_mapping(db_session: Session) -> None:
    seeded = shipping_modes.ensure_default_shipping_modes(db_session)
    shop = make_shop(db_session, "boutique")
    mapping = shop_settings.set_carrier_mapping(db_session, shop, "GLS", seeded["gls"].id)
    shipping_modes.set_active(db_session, seeded["gls"], False)
    used = {row.mode.code: row.mappings for row in shipping_modes.list_modes(db_session)}
    assert used["gls"] == 1
    with pytest.raises(ValidationFailed):
        shop_settings.set_carrier_mapping(db_session, shop, "GLS relais", seeded["gls"].id)
    # Saving the existing row unchanged is allowed; it still points at the mode.
    shop_settings.set_carrier_mapping(db_session, shop, "GLS", seeded["gls"].id)
    assert mapping.shipping_mode is seeded["gls"]
