"""The shipping modes settings page as an admin uses it over HTTP, who else is refused, the
shops' mappings that offer only active modes, and the order page's mode and relay point."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import make_order, make_shop
from web.models import AuditEvent, CarrierMapping, ShippingMode, User
from web.models.enums import Role
from web.services import shipping_modes

PARTIAL = {"HX-Request": "true"}
LIST_SWAP = {**PARTIAL, "HX-Target": "modes-results"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
BASE = "/admin/shipping-modes/"


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


@pytest.fixture()
def seeded(db_session: Session) -> dict[str, ShippingMode]:
    modes = shipping_modes.ensure_default_shipping_modes(db_session)
    db_session.commit()
    return modes


@pytest.fixture()
def admin(client: FlaskClient, login_as: Callable[..., User]) -> FlaskClient:
    login_as(Role.ADMIN)
    return client


@pytest.fixture()
def token(admin: FlaskClient, seeded: dict[str, ShippingMode]) -> str:
    return csrf_token(admin, BASE)


def new_mode(**changes: str) -> dict[str, str]:
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
        "code_prestashop": "",
        "code_magento": "custom",
    }
    values.update(changes)
    return values


def row_names(page: str) -> list[str]:
    return [
        html.unescape(name)
        for name in re.findall(r'<a class="strong" href="[^"]+">([^<]+)</a>', page)
    ]


# --- The list ----------------------------------------------------------------------------------


def test_the_list_shows_every_seeded_mode_active_first(
    admin: FlaskClient, db_session: Session, seeded: dict[str, ShippingMode]
) -> None:
    seeded["chronopost"].is_active = False
    db_session.commit()
    page = text(admin.get(BASE))
    names = row_names(page)
    assert names[-1] == "Chronopost Chrono 13"
    assert set(names) == {mode.name for mode in seeded.values()}
    assert "mondial_relay" in page and "Mondial Relay · Point Relais" in page


def test_the_filter_swaps_the_list_and_its_url_loads_a_whole_page(
    admin: FlaskClient, db_session: Session, seeded: dict[str, ShippingMode]
) -> None:
    seeded["gls"].is_active = False
    db_session.commit()
    fragment = admin.get(BASE, query_string={"status": "inactive"}, headers=LIST_SWAP)
    assert fragment.status_code == 200
    assert "<html" not in text(fragment) and 'id="modes-results"' in text(fragment)
    assert row_names(text(fragment)) == ["GLS Chez vous"]
    assert "HX-Request" in fragment.headers["Vary"]
    active = row_names(text(admin.get(BASE, query_string={"status": "active"}, headers=LIST_SWAP)))
    assert "GLS Chez vous" not in active and len(active) == len(seeded) - 1
    full = admin.get(BASE, query_string={"status": "inactive"}, headers=BOOSTED)
    assert "<html" in text(full) and row_names(text(full)) == ["GLS Chez vous"]
    # A value that is no filter shows everything.
    assert len(row_names(text(admin.get(BASE, query_string={"status": "x"})))) == len(seeded)


# --- Adding and editing -------------------------------------------------------------------------


def test_an_admin_adds_a_mode_without_htmx(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    form_page = text(admin.get(f"{BASE}new"))
    assert 'name="tracking_url_template"' in form_page and 'name="code_magento"' in form_page
    response = admin.post(BASE, data={**new_mode(), "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(BASE)
    listed = text(admin.get(BASE))
    assert "Relais Colis" in row_names(listed) and "relais_colis" in listed
    mode = db_session.scalars(select(ShippingMode).where(ShippingMode.code == "relais_colis")).one()
    assert mode.is_relay_point and mode.is_active
    assert mode.carrier_codes["prestashop"].endswith("PageSuivi.aspx?Ref=@")


def test_a_refused_mode_shows_each_error_next_to_its_field(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    data = new_mode(
        code="colissimo", tracking_url_template="javascript:alert(1)//{tracking}", name=""
    )
    response = admin.post(BASE, data={**data, "csrf_token": token}, headers=PARTIAL)
    assert response.status_code == 422
    page = text(response)
    assert "<html" not in page and 'id="mode-form"' in page
    assert 'id="err-code"' in page and 'id="err-name"' in page
    assert 'id="err-tracking_url_template"' in page and "https://" in page
    # What was typed comes back, escaped.
    assert "javascript:alert(1)//{tracking}" in page
    assert (
        db_session.scalar(select(ShippingMode).where(ShippingMode.code == "relais_colis")) is None
    )
    # Without htmx the whole page comes back, with the same errors.
    whole = admin.post(BASE, data={**data, "csrf_token": token})
    assert whole.status_code == 422 and "<html" in text(whole) and 'id="err-code"' in text(whole)


def test_the_form_needs_the_csrf_token(admin: FlaskClient, token: str) -> None:
    response = admin.post(BASE, data=new_mode())
    assert response.status_code == 400


def test_an_admin_edits_a_mode_and_its_code_stays(
    admin: FlaskClient, token: str, seeded: dict[str, ShippingMode], db_session: Session
) -> None:
    mode = seeded["dpd"]
    edit = text(admin.get(f"{BASE}{mode.id}"))
    assert "https://trace.dpd.fr/fr/trace/6A12345678901" in edit  # the server's example link
    data = {
        **shipping_modes.form_values(mode),
        "code": "hacked",
        "name": "DPD Relais",
        "is_relay_point": "1",
        "tracking_url_template": "https://trace.dpd.fr/fr/trace/{tracking}?cp={postcode}",
        "csrf_token": token,
    }
    response = admin.post(f"{BASE}{mode.id}", data=data, headers=PARTIAL)
    assert response.status_code == 204
    assert response.headers["HX-Location"].endswith(BASE)
    # htmx loads that address into the body: the whole page, with the message.
    visit = text(admin.get(response.headers["HX-Location"], headers=PARTIAL))
    assert "<html" in visit and "DPD Relais" in visit and 'class="flashes"' in visit
    db_session.expire_all()
    mode = db_session.get(ShippingMode, mode.id)
    assert mode is not None
    assert (mode.code, mode.name, mode.is_relay_point) == ("dpd", "DPD Relais", True)
    assert mode.tracking_url("1/2", "75011") == "https://trace.dpd.fr/fr/trace/1%2F2?cp=75011"
    # Where every buyer is sent changed: the audit log says who changed it, from what.
    entry = db_session.scalars(select(AuditEvent)).one()
    assert entry.kind == "shipping_mode.tracking_url_changed"
    assert entry.params == {
        "mode": "dpd",
        "old_url": "https://trace.dpd.fr/fr/trace/{tracking}",
        "new_url": "https://trace.dpd.fr/fr/trace/{tracking}?cp={postcode}",
    }
    assert entry.actor_user_id is not None
    assert "?cp={postcode}" in text(admin.get("/admin/audit/"))
    # Saving again without changing the link adds nothing.
    admin.post(f"{BASE}{mode.id}", data={**data, "name": "DPD Relais 2"})
    assert len(db_session.scalars(select(AuditEvent)).all()) == 1


def test_a_refused_edit_changes_nothing(
    admin: FlaskClient, token: str, seeded: dict[str, ShippingMode], db_session: Session
) -> None:
    mode = seeded["ups"]
    data = {
        **shipping_modes.form_values(mode),
        "name": "Changed",
        "tracking_url_template": "data:text/html,{tracking}",
        "csrf_token": token,
    }
    response = admin.post(f"{BASE}{mode.id}", data=data)
    assert response.status_code == 422
    assert 'id="err-tracking_url_template"' in text(response)
    assert "ups" in text(response)  # the code is still shown
    db_session.expire_all()
    assert db_session.get(ShippingMode, mode.id).name == "UPS Standard"  # type: ignore[union-attr]
    assert admin.get(f"{BASE}999999").status_code == 404


def test_the_preview_fills_the_template_on_the_server(admin: FlaskClient) -> None:
    preview = admin.get(
        f"{BASE}preview",
        query_string={"tracking_url_template": "https://suivi.example.fr/{tracking}?cp={postcode}"},
        headers=PARTIAL,
    )
    assert preview.status_code == 200 and "<html" not in text(preview)
    assert "https://suivi.example.fr/6A12345678901?cp=75011" in text(preview)
    refused = admin.get(
        f"{BASE}preview",
        query_string={"tracking_url_template": "javascript:alert(1)//{tracking}"},
        headers=PARTIAL,
    )
    assert "field-error" in text(refused) and 'href="javascript' not in text(refused)


# --- Deactivating ------------------------------------------------------------------------------


def test_deactivate_and_reactivate_with_htmx_keep_the_filter(
    admin: FlaskClient, token: str, seeded: dict[str, ShippingMode], db_session: Session
) -> None:
    gls = seeded["gls"]
    response = admin.post(
        f"{BASE}{gls.id}/active",
        data={"active": "0", "status": "active", "csrf_token": token},
        headers=LIST_SWAP,
    )
    assert response.status_code == 200 and "<html" not in text(response)
    assert "GLS Chez vous" not in row_names(text(response))
    assert "deactivated" in text(response) or "désactivé" in text(response)
    db_session.expire_all()
    assert db_session.get(ShippingMode, gls.id).is_active is False  # type: ignore[union-attr]
    back = admin.post(
        f"{BASE}{gls.id}/active", data={"active": "1", "status": "inactive", "csrf_token": token}
    )
    assert back.status_code == 303 and back.headers["Location"].endswith("?status=inactive")
    db_session.expire_all()
    assert db_session.get(ShippingMode, gls.id).is_active is True  # type: ignore[union-attr]


def test_a_mode_in_use_is_deactivated_never_deleted(
    admin: FlaskClient, token: str, seeded: dict[str, ShippingMode], db_session: Session
) -> None:
    shop = make_shop(db_session, "boutique")
    db_session.add(
        CarrierMapping(shop=shop, shop_label="Colissimo", shipping_mode=seeded["colissimo"])
    )
    order = make_order(db_session, shop, shipping_mode=seeded["colissimo"])
    db_session.commit()
    page = text(admin.get(BASE))
    assert "1 shop method" in page or "1 méthode" in page
    assert "data-confirm" in page  # deactivating a mapped mode asks first
    admin.post(f"{BASE}{seeded['colissimo'].id}/active", data={"active": "0", "csrf_token": token})
    db_session.expire_all()
    assert db_session.get(ShippingMode, seeded["colissimo"].id) is not None
    assert db_session.scalars(select(CarrierMapping)).one().shipping_mode.code == "colissimo"
    assert "Colissimo Domicile" in text(admin.get(f"/orders/{order.id}"))


# --- Who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MANAGER, Role.VIEWER, Role.WAREHOUSE])
def test_only_admins_reach_the_page(
    client: FlaskClient,
    login_as: Callable[..., User],
    seeded: dict[str, ShippingMode],
    db_session: Session,
    role: Role,
) -> None:
    login_as(role)
    token = csrf_token(client, "/warehouse/" if role == Role.WAREHOUSE else "/orders/")
    gls = seeded["gls"]
    for path in (BASE, f"{BASE}new", f"{BASE}{gls.id}", f"{BASE}preview"):
        assert client.get(path).status_code == 403, path
    assert client.post(BASE, data={**new_mode(), "csrf_token": token}).status_code == 403
    posted = client.post(f"{BASE}{gls.id}", data={**new_mode(name="x"), "csrf_token": token})
    assert posted.status_code == 403
    deactivated = client.post(f"{BASE}{gls.id}/active", data={"active": "0", "csrf_token": token})
    assert deactivated.status_code == 403
    db_session.expire_all()
    assert db_session.get(ShippingMode, gls.id).is_active  # type: ignore[union-attr]
    assert (
        db_session.scalar(select(ShippingMode).where(ShippingMode.code == "relais_colis")) is None
    )


def test_logged_out_visitors_go_to_the_login(client: FlaskClient) -> None:
    response = client.get(BASE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_admin_area_links_to_the_page(admin: FlaskClient, db_session: Session) -> None:
    shop = make_shop(db_session, "boutique")
    db_session.commit()
    assert f'href="{BASE}"' in text(admin.get("/shops/"))
    assert f'href="{BASE}"' in text(admin.get(f"/shops/{shop.key}/mappings"))


# --- The shops' mappings offer active modes only -----------------------------------------------


def test_mappings_offer_only_active_modes_and_keep_an_inactive_one_chosen(
    admin: FlaskClient, seeded: dict[str, ShippingMode], db_session: Session
) -> None:
    shop = make_shop(db_session, "boutique")
    db_session.add(CarrierMapping(shop=shop, shop_label="GLS maison", shipping_mode=seeded["gls"]))
    seeded["gls"].is_active = False
    db_session.commit()
    page = text(admin.get(f"/shops/{shop.key}/mappings"))
    add_form = page[page.index('id="add-carrier-mode"') :]
    add_form = add_form[: add_form.index("</select>")]
    assert "GLS" not in add_form and "UPS Standard" in add_form
    row = page[page.index('id="carrier-') :]
    row = row[: row.index("</select>")]
    assert re.search(rf'<option value="{seeded["gls"].id}" selected>GLS Chez vous \(', row)
    token = csrf_token(admin, f"/shops/{shop.key}/mappings")
    refused = admin.post(
        f"/shops/{shop.key}/mappings/carriers",
        data={
            "shop_label": "Autre",
            "shipping_mode_id": str(seeded["gls"].id),
            "csrf_token": token,
        },
    )
    assert refused.status_code == 422
    assert (
        db_session.scalar(select(CarrierMapping).where(CarrierMapping.shop_label == "Autre"))
        is None
    )


# --- The order page ----------------------------------------------------------------------------


def test_the_order_page_shows_the_mode_and_the_relay_point_the_shop_sent(
    admin: FlaskClient, seeded: dict[str, ShippingMode], db_session: Session
) -> None:
    shop = make_shop(db_session, "boutique")
    relay = {
        "first_name": "Marie",
        "last_name": "Curie",
        "company": "Tabac <b>de la Gare</b>",
        "address1": "3 rue de la Gare",
        "postcode": "69001",
        "city": "Lyon",
        "country_code": "FR",
        "relay_point_id": "FR-012345",
    }
    order = make_order(
        db_session,
        shop,
        shipping_mode=seeded["mondial_relay"],
        shipping_label="Point Relais Mondial",
        shipping_address=relay,
    )
    home = make_order(db_session, shop, shipping_mode=seeded["ups"], shipping_label="UPS Standard")
    forgot = make_order(db_session, shop, shipping_mode=seeded["colissimo_relais"])
    unmapped = make_order(db_session, shop, shipping_label="Livraison express")
    db_session.commit()

    page = text(admin.get(f"/orders/{order.id}"))
    card = page[page.index('id="shipping-mode"') :]
    card = card[: card.index("</section>")]
    assert "Mondial Relay Point Relais" in card and "Point Relais Mondial" in card
    assert "FR-012345" in card and "69001 Lyon" in card and "3 rue de la Gare" in card
    assert "Tabac &lt;b&gt;de la Gare&lt;/b&gt;" in card  # the shop's text, escaped

    card = (
        text(admin.get(f"/orders/{home.id}")).split('id="shipping-mode"')[1].split("</section>")[0]
    )
    assert "UPS Standard" in card and "FR-" not in card and "relay-point" not in card
    card = (
        text(admin.get(f"/orders/{forgot.id}"))
        .split('id="shipping-mode"')[1]
        .split("</section>")[0]
    )
    assert "Colissimo Point Retrait" in card and "banner warn" in card
    card = (
        text(admin.get(f"/orders/{unmapped.id}"))
        .split('id="shipping-mode"')[1]
        .split("</section>")[0]
    )
    assert "Livraison express" in card and "badge warn" in card
