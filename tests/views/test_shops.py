"""Shop settings as an administrator sees them: create and edit a shop, connect it, map its
vocabulary so parked orders flow, and start a sync or an import and watch it finish."""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token
from tests.connectors.test_addresses import Answering
from tests.emulators.base import RecordedRequest, Reply
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.factories import make_shop
from tests.services.test_shop_settings import order_copy, receive
from web import queue
from web.models import AuditEvent, InboxEvent, Job, Order, ShippingMode, Shop, ShopPacing, User
from web.models.enums import InboxState, JobState, Role, ShopStatusMeaning
from web.services import shop_settings, shops, sync

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


@pytest.fixture()
def admin(client: FlaskClient, login_as: Callable[..., User]) -> FlaskClient:
    login_as(Role.ADMIN)
    return client


@pytest.fixture()
def token(admin: FlaskClient) -> str:
    return csrf_token(admin, "/shops/")


@pytest.fixture()
def woo(db_session: Session) -> Shop:
    shop = shop_settings.add_shop(
        db_session,
        "woocommerce",
        name="Atelier Paris",
        base_url="https://atelier.example.fr",
        api_key="ck_secret_key_123",
        api_secret="cs_secret_456",
    )
    db_session.commit()
    return shop


@pytest.fixture()
def shopify() -> Iterator[ShopifyEmulator]:
    emulator = ShopifyEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


# --- Who may --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "shops_status", "sync_status"),
    [
        (Role.ADMIN, 200, 200),
        (Role.MANAGER, 403, 200),
        (Role.WAREHOUSE, 403, 403),
        (Role.VIEWER, 403, 403),
    ],
)
def test_only_admins_reach_shop_settings_and_managers_the_sync_log(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    role: Role,
    shops_status: int,
    sync_status: int,
) -> None:
    shop = make_shop(db_session, "lyon")
    db_session.commit()
    login_as(role)
    assert client.get("/shops/").status_code == shops_status
    assert client.get(f"/shops/{shop.key}").status_code == shops_status
    assert client.get("/sync/").status_code == sync_status
    home = text(client.get("/warehouse/" if role == Role.WAREHOUSE else "/"))
    assert ('href="/shops/"' in home) == (role == Role.ADMIN)
    assert ('href="/sync/"' in home) == (sync_status == 200)


def test_a_manager_cannot_post_to_shop_settings(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    shop = make_shop(db_session, "lyon")
    db_session.commit()
    login_as(Role.MANAGER)
    token = csrf_token(client, "/sync/")
    response = client.post(f"/shops/{shop.key}/sync", data={"csrf_token": token})
    assert response.status_code == 403
    assert db_session.scalar(select(func.count()).select_from(Job)) == 0


# --- Creating and editing -------------------------------------------------------------------


def test_creating_a_shop_shows_its_webhook_url_and_secret(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    response = admin.post(
        "/shops/",
        data={
            "csrf_token": token,
            "platform": "woocommerce",
            "name": "Atelier Paris",
            "base_url": "https://atelier.example.fr/",
            "api_key": "ck_123",
            "api_secret": "cs_456",
        },
    )
    assert response.status_code == 303
    shop = db_session.scalars(select(Shop)).one()
    assert response.headers["Location"] == f"/shops/{shop.key}"
    page = text(admin.get(response.headers["Location"]))
    assert f"http://comptoir.test/hooks/woocommerce/{shop.key}" in page
    assert shop.webhook_secret and f'value="{shop.webhook_secret}"' in page
    assert "Boutique Atelier Paris créée" in page
    # The API credentials are never sent back to the browser.
    assert "ck_123" not in page and "cs_456" not in page
    assert "Enregistrée. Saisissez une nouvelle valeur pour la remplacer." in page


def test_a_bad_address_is_refused_inline_and_nothing_is_saved(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    response = admin.post(
        "/shops/",
        data={"csrf_token": token, "platform": "shopify", "name": "X", "base_url": "boutique"},
    )
    assert response.status_code == 422
    page = text(response)
    assert "Saisissez l’adresse de la boutique, en commençant par https://" in page
    assert 'aria-invalid="true"' in page and 'value="X"' in page
    assert db_session.scalar(select(func.count()).select_from(Shop)) == 0


def test_editing_without_retyping_the_api_key_keeps_it(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    form = {
        "csrf_token": token,
        "name": "Atelier Paris 11e",
        "base_url": "https://atelier.example.fr",
        "api_key": "",
        "api_secret": "cs_new",
        "webhook_secret": "",
        "import_from": "2026-01-01",
        "poll_interval_seconds": "600",
        "invoice_policy": "on_payment",
        "is_active": "1",
        "push_statuses": "1",
    }
    old_webhook_secret = woo.webhook_secret
    response = admin.post(f"/shops/{woo.key}", data=form)
    assert response.status_code == 303
    db_session.expire_all()
    assert woo.api_key == "ck_secret_key_123"
    assert woo.api_secret == "cs_new"
    assert woo.webhook_secret == old_webhook_secret
    assert woo.name == "Atelier Paris 11e" and woo.poll_interval_seconds == 600
    assert woo.push_statuses and not woo.push_tracking  # unticked boxes switch flows off
    page = text(admin.get(f"/shops/{woo.key}"))
    assert "Réglages enregistrés." in page
    assert "ck_secret_key_123" not in page and "cs_new" not in page


def test_a_too_short_poll_interval_is_refused_with_the_form_kept(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    response = admin.post(
        f"/shops/{woo.key}",
        data={
            "csrf_token": token,
            "name": "Nouveau nom",
            "base_url": "https://atelier.example.fr",
            "poll_interval_seconds": "29",
            "invoice_policy": "manual",
        },
    )
    assert response.status_code == 422
    page = text(response)
    assert "interrogée plus souvent que toutes les 30 secondes." in page
    assert 'value="Nouveau nom"' in page
    db_session.expire_all()
    assert woo.name == "Atelier Paris" and woo.poll_interval_seconds == 300


def test_a_shopify_plus_shop_is_paced_at_the_rate_typed_in_its_settings(
    admin: FlaskClient, token: str, db_session: Session, shopify: ShopifyEmulator
) -> None:
    shop = make_shop(db_session, "plus", base_url=shopify.base_url, api_key=shopify.access_token)
    db_session.commit()
    form = {
        "csrf_token": token,
        "name": "Plus",
        "base_url": shopify.base_url,
        "poll_interval_seconds": "300",
        "invoice_policy": "manual",
        "api_calls_per_second": "vingt",
    }
    response = admin.post(f"/shops/{shop.key}", data=form)
    assert response.status_code == 422
    assert "Indiquez un nombre de requêtes par seconde, par exemple 2 ou 20." in text(response)
    response = admin.post(f"/shops/{shop.key}", data={**form, "api_calls_per_second": "20"})
    assert response.status_code == 303
    page = text(admin.get(f"/shops/{shop.key}"))
    assert "Requêtes d’API par seconde" in page and 'value="20.00"' in page

    # Talking to the shop goes through the pacer, at the shop's own rate.
    db_session.expire_all()
    assert shop_settings.test_connection(shop).ok
    pacing = db_session.scalars(select(ShopPacing).where(ShopPacing.shop_id == shop.id)).one()
    assert pacing.leak_rate == 20.0 and pacing.capacity == 40 and pacing.level >= 1

    response = admin.post(f"/shops/{shop.key}", data={**form, "api_calls_per_second": ""})
    assert response.status_code == 303
    db_session.expire_all()
    assert shop.api_calls_per_second is None  # blank: Shopify's standard pace again


def test_an_unknown_shop_is_a_404(admin: FlaskClient) -> None:
    assert admin.get("/shops/nope").status_code == 404
    assert admin.get("/shops/nope/mappings").status_code == 404


# --- Talking to the shop --------------------------------------------------------------------


def test_testing_the_connection_to_a_dead_port_says_so_inline(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    shop = make_shop(db_session, "dead", base_url=f"http://127.0.0.1:{closed_port()}", api_key="x")
    db_session.commit()
    response = admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL)
    assert response.status_code == 200
    fragment = text(response)
    assert "<html" not in fragment and 'id="test-result"' in fragment
    assert "Impossible de joindre la boutique." in fragment
    assert "Connection refused" not in fragment  # our own words only: the log has the rest

    # Without htmx: back to the settings page, the message on top.
    response = admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token})
    assert response.status_code == 303
    assert "Impossible de joindre la boutique." in text(admin.get(response.headers["Location"]))


def test_testing_and_registering_webhooks_against_shopify(
    admin: FlaskClient, token: str, db_session: Session, shopify: ShopifyEmulator
) -> None:
    shop = make_shop(db_session, "lumiere", base_url=shopify.base_url, api_key=shopify.access_token)
    db_session.commit()
    answer = text(
        admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL)
    )
    assert "Connectée" in answer and "Shopify" in answer

    answer = text(
        admin.post(f"/shops/{shop.key}/webhooks", data={"csrf_token": token}, headers=PARTIAL)
    )
    assert "5 webhooks enregistrés dans la boutique." in answer and "orders/create" in answer
    assert {hook["address"] for hook in shopify.webhooks} == {
        f"http://comptoir.test/hooks/shopify/{shop.key}"
    }
    answer = text(
        admin.post(f"/shops/{shop.key}/webhooks", data={"csrf_token": token}, headers=PARTIAL)
    )
    assert "envoie déjà tous les webhooks" in answer


def test_a_new_webhook_secret_replaces_the_old_one(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    old = woo.webhook_secret
    response = admin.post(f"/shops/{woo.key}/webhook-secret", data={"csrf_token": token})
    assert response.status_code == 303
    db_session.expire_all()
    assert woo.webhook_secret != old
    assert f'value="{woo.webhook_secret}"' in text(admin.get(f"/shops/{woo.key}"))


# --- Mappings --------------------------------------------------------------------------------


@pytest.fixture()
def parked(db_session: Session, session_factory: sessionmaker[Session], woo: Shop) -> Order:
    """An order of the shop waiting because its status is unknown."""
    receive(db_session, session_factory, woo, order_copy(status="wc-awaiting-shipment"))
    order = db_session.scalars(select(Order)).one()
    assert order.needs_mapping
    return order


def test_mapping_what_blocks_an_order_lets_it_flow(
    admin: FlaskClient,
    token: str,
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    parked: Order,
) -> None:
    page = text(admin.get(f"/shops/{woo.key}/mappings"))
    assert "1 commande attend une correspondance" in page
    assert "wc-awaiting-shipment" in page

    response = admin.post(
        f"/shops/{woo.key}/mappings/statuses",
        data={"csrf_token": token, "shop_status": "wc-awaiting-shipment", "meaning": "paid"},
        headers=PARTIAL,
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "mappings-changed"
    fragment = text(response)
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="mappings"')
    assert "Correspondance enregistrée." in fragment
    assert "attend une correspondance" not in fragment

    event = db_session.scalars(select(InboxEvent)).one()
    db_session.expire_all()
    assert event.state == InboxState.PENDING and event.attempts == 0
    assert "<strong>Correspondance manquante</strong>" in text(admin.get(f"/orders/{parked.id}"))
    sync.process_pending(session_factory, woo.id)  # what the worker does every second
    db_session.expire_all()
    assert not parked.needs_mapping
    assert "<strong>Correspondance manquante</strong>" not in text(
        admin.get(f"/orders/{parked.id}")
    )


def test_a_row_is_edited_in_place(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    mapping = next(m for m in woo.status_mappings if m.shop_status == "on-hold")
    url = f"/shops/{woo.key}/mappings/statuses/{mapping.id}"
    response = admin.post(
        url,
        data={"csrf_token": token, "meaning": "on_hold", "label": "En attente"},
        headers=PARTIAL,
    )
    fragment = text(response)
    assert response.status_code == 200
    assert fragment.lstrip().startswith(f'<tr id="status-{mapping.id}"')
    assert "Enregistrée" in fragment and 'value="En attente"' in fragment
    db_session.expire_all()
    assert (mapping.meaning, mapping.label) == (ShopStatusMeaning.ON_HOLD, "En attente")

    # Without htmx the same form ends in a redirect to the mappings page.
    response = admin.post(url, data={"csrf_token": token, "meaning": "paid"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shops/{woo.key}/mappings"


def test_carrier_rows_milestones_and_removal(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    mode = db_session.scalars(select(ShippingMode).where(ShippingMode.code == "dpd")).one()
    response = admin.post(
        f"/shops/{woo.key}/mappings/carriers",
        data={"csrf_token": token, "shop_label": "DPD Predict", "shipping_mode_id": mode.id},
    )
    assert response.status_code == 303
    db_session.expire_all()
    [carrier] = woo.carrier_mappings
    assert carrier.shipping_mode_id == mode.id

    milestone = next(m for m in woo.milestone_mappings if m.milestone == "completed")
    admin.post(
        f"/shops/{woo.key}/mappings/milestones/{milestone.id}",
        data={"csrf_token": token, "shop_status": "wc-delivered"},  # "enabled" unticked
        headers=PARTIAL,
    )
    db_session.expire_all()
    assert (milestone.shop_status, milestone.enabled) == ("wc-delivered", False)

    response = admin.post(
        f"/shops/{woo.key}/mappings/carriers/{carrier.id}/delete",
        data={"csrf_token": token},
        headers=PARTIAL,
    )
    assert "Correspondance supprimée." in text(response)
    db_session.expire_all()
    assert woo.carrier_mappings == []


def test_a_row_left_incomplete_shows_its_error_in_the_row(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    milestone = next(m for m in woo.milestone_mappings if m.milestone == "completed")
    url = f"/shops/{woo.key}/mappings/milestones/{milestone.id}"
    response = admin.post(url, data={"csrf_token": token, "shop_status": " "}, headers=PARTIAL)
    assert response.status_code == 422
    fragment = text(response)
    assert fragment.lstrip().startswith(f'<tr id="milestone-{milestone.id}"')
    assert "Obligatoire." in fragment and 'value="completed"' in fragment
    db_session.expire_all()
    assert milestone.shop_status == "completed" and milestone.enabled

    response = admin.post(url, data={"csrf_token": token, "shop_status": ""})
    assert response.status_code == 303
    page = text(admin.get(response.headers["Location"]))
    assert "La correspondance n’a pas été enregistrée : Obligatoire." in page
    partial = text(admin.get(f"/shops/{woo.key}/mappings", headers=PARTIAL))
    assert "<html" not in partial and partial.lstrip().startswith('<div id="mappings"')


def test_an_incomplete_mapping_is_refused_inline(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    before = len(woo.status_mappings)
    response = admin.post(
        f"/shops/{woo.key}/mappings/statuses",
        data={"csrf_token": token, "shop_status": "wc-new", "meaning": ""},
        headers=PARTIAL,
    )
    assert response.status_code == 422
    fragment = text(response)
    assert "Choisissez ce que signifie ce statut." in fragment
    assert 'value="wc-new"' in fragment
    db_session.expire_all()
    assert len(woo.status_mappings) == before


def test_the_shop_lists_come_with_suggestions(
    admin: FlaskClient, db_session: Session, shopify: ShopifyEmulator
) -> None:
    shop = shop_settings.add_shop(
        db_session,
        "shopify",
        name="Lumière",
        base_url=shopify.base_url,
        api_key=shopify.access_token,
    )
    # A status the platform defaults do not cover, for the suggestion to show.
    shop.status_mappings.remove(next(m for m in shop.status_mappings if m.shop_status == "voided"))
    db_session.commit()
    page = text(admin.get(f"/shops/{shop.key}/mappings"))
    assert 'hx-trigger="load"' in page  # asked after the page, the shop may be slow

    fragment = text(admin.get(f"/shops/{shop.key}/mappings/shop-lists", headers=PARTIAL))
    assert "<html" not in fragment and 'id="shop-lists"' in fragment
    voided = fragment[fragment.index('value="voided"') :]
    assert re.search(r'<option value="cancelled" selected>', voided)
    assert "mappings-changed from:body" in fragment

    full = text(admin.get(f"/shops/{shop.key}/mappings/shop-lists"))
    assert "<html" in full and 'id="mappings"' in full


def test_the_shop_lists_say_when_the_shop_cannot_be_reached(
    admin: FlaskClient, db_session: Session
) -> None:
    shop = make_shop(db_session, "dead", base_url=f"http://127.0.0.1:{closed_port()}")
    db_session.commit()
    fragment = text(admin.get(f"/shops/{shop.key}/mappings/shop-lists", headers=PARTIAL))
    assert "Impossible de joindre la boutique." in fragment


# --- What answered, and where the credentials go -------------------------------------------
# Private addresses are allowed here (as with APP_ALLOW_PRIVATE_SHOP_URLS=1) to reach the
# loopback servers: tests/views/test_shop_addresses.py shows them refused otherwise.

METADATA_ANSWER = "ami-id\ninstance-id\niam/security-credentials/comptoir-role AKIA-LEAKED-7F3Q"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (200, "La boutique a répondu, mais pas comme son API."),
        (403, "La boutique a refusé les identifiants."),
        (404, "La boutique a répondu, mais pas comme son API."),
        (418, "La boutique a répondu avec un statut d’erreur."),
        (500, "La boutique a répondu avec un statut d’erreur."),
    ],
)
def test_the_connection_test_never_shows_what_answered(
    admin: FlaskClient, token: str, db_session: Session, status: int, message: str
) -> None:
    with Answering(Reply(status, METADATA_ANSWER.encode(), {"Content-Type": "text/plain"})) as meta:
        shop = make_shop(
            db_session, "meta", "woocommerce", base_url=meta.base_url, api_key="ck", api_secret="cs"
        )
        db_session.commit()
        url = f"/shops/{shop.key}/test"
        pages = [text(admin.post(url, data={"csrf_token": token}, headers=PARTIAL))]
        response = admin.post(url, data={"csrf_token": token})
        pages.append(text(admin.get(response.headers["Location"])))
        pages.append(text(admin.get(f"/shops/{shop.key}/mappings/shop-lists", headers=PARTIAL)))
        webhooks = f"/shops/{shop.key}/webhooks"
        pages.append(text(admin.post(webhooks, data={"csrf_token": token}, headers=PARTIAL)))
        assert len(meta.requests) >= 4  # it was reached, and answered every time
    for page in pages:
        assert "AKIA-LEAKED" not in page and "instance-id" not in page
    assert message in pages[0] and message in pages[1]
    assert (f"HTTP {status}" in pages[0]) == (status != 200)  # our summary: the status only


def test_a_redirect_is_not_followed_and_says_so(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    with Answering(Reply(200, METADATA_ANSWER.encode())) as inside:
        target = f"{inside.base_url}/latest/meta-data/"
        moved = Reply(301, b"", {"Location": target})
        with Answering(moved) as outside:
            shop = make_shop(db_session, "moved", base_url=outside.base_url, api_key="shpat_x")
            db_session.commit()
            fragment = text(
                admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL)
            )
            assert len(outside.requests) == 1
        assert inside.requests == []
    assert "L’adresse de la boutique redirige ailleurs" in fragment and "HTTP 301" in fragment
    assert "AKIA-LEAKED" not in fragment and target not in fragment


def carries(request: RecordedRequest, *secrets: str) -> bool:
    """Whether any of the secrets travels in the request, anywhere or base64-encoded."""
    import base64

    seen = " ".join(
        [request.path, repr(request.query), repr(request.headers), request.body.decode()]
    )
    encoded = [base64.b64encode(f"{a}:{b}".encode()).decode() for a in secrets for b in secrets]
    return any(secret in seen for secret in [*secrets, *encoded])


def test_a_new_address_clears_the_credentials_and_the_new_host_never_gets_them(
    admin: FlaskClient, token: str, db_session: Session
) -> None:
    with WooCommerceEmulator() as woo, Answering(Reply.json({})) as elsewhere:
        assert isinstance(woo, WooCommerceEmulator)
        shop = shop_settings.add_shop(
            db_session,
            "woocommerce",
            name="Atelier",
            base_url=woo.base_url,
            api_key=woo.consumer_key,
            api_secret=woo.consumer_secret,
        )
        db_session.commit()
        webhook_secret = shop.webhook_secret
        assert shop_settings.test_connection(shop).ok
        credentials = (woo.consumer_key, woo.consumer_secret)
        assert all(carries(r, *credentials) for r in woo.requests)  # the check can see them

        form = {
            "csrf_token": token,
            "name": "Atelier",
            "base_url": elsewhere.base_url,
            "poll_interval_seconds": "300",
            "invoice_policy": "manual",
            "api_key": "",
            "api_secret": "",
        }
        response = admin.post(f"/shops/{shop.key}", data=form)
        assert response.status_code == 303
        page = text(admin.get(response.headers["Location"]))
        assert "ses identifiants d’API ont été effacés. Saisissez-les de nouveau." in page
        assert 'id="needs-credentials"' in page
        db_session.expire_all()
        assert (shop.base_url, shop.api_key, shop.api_secret) == (elsewhere.base_url, None, None)
        assert shop.webhook_secret == webhook_secret  # ours, checked on arrival, never sent

        # The connection test sends nothing; the shop lists and a sync send no credentials.
        answer = text(
            admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL)
        )
        assert "La boutique n’a pas encore d’identifiants d’API" in answer
        assert elsewhere.requests == []
        admin.get(f"/shops/{shop.key}/mappings/shop-lists", headers=PARTIAL)
        admin.post(f"/shops/{shop.key}/webhooks", data={"csrf_token": token}, headers=PARTIAL)
        shop_settings.test_connection(shop, shops.connector_for(shop))
        assert elsewhere.requests
        assert not any(carries(r, *credentials) for r in elsewhere.requests)
        old_url, new_url = woo.base_url, elsewhere.base_url

    event = db_session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "shop.url_changed")
    ).one()
    admin_user = db_session.scalars(select(User).where(User.role == Role.ADMIN)).one()
    assert event.actor_user_id == admin_user.id
    assert event.params == {
        "shop": "Atelier",
        "old_url": old_url,
        "new_url": new_url,
    }


def test_credentials_typed_with_the_new_address_are_kept(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    form = {
        "csrf_token": token,
        "name": woo.name,
        "base_url": "https://atelier-paris.example.fr",
        "poll_interval_seconds": "300",
        "invoice_policy": "manual",
        "api_key": "ck_new",
        "api_secret": "",
    }
    response = admin.post(f"/shops/{woo.key}", data=form)
    assert response.status_code == 303
    page = text(admin.get(response.headers["Location"]))
    assert "ont été effacés" not in page and 'id="needs-credentials"' not in page
    db_session.expire_all()
    # The secret was not typed again: it belonged to the old address.
    assert (woo.api_key, woo.api_secret) == ("ck_new", None)
    kinds = db_session.scalars(select(AuditEvent.kind)).all()
    assert kinds == ["shop.url_changed"]


# --- Sync now and backfill ------------------------------------------------------------------


def test_sync_now_shows_progress_until_the_job_is_done(
    admin: FlaskClient,
    token: str,
    db_session: Session,
    session_factory: sessionmaker[Session],
    shopify: ShopifyEmulator,
) -> None:
    shop = make_shop(db_session, "lumiere", base_url=shopify.base_url, api_key=shopify.access_token)
    db_session.commit()
    response = admin.post(f"/shops/{shop.key}/sync", data={"csrf_token": token}, headers=PARTIAL)
    fragment = text(response)
    job = db_session.scalars(select(Job)).one()
    assert (job.kind, job.payload) == ("sync.shop", {"shop_id": shop.id})
    assert "<html" not in fragment
    assert f'hx-get="/shops/{shop.key}/jobs/{job.id}"' in fragment
    assert 'hx-trigger="every 1s"' in fragment

    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    assert job.state == JobState.DONE
    done = text(admin.get(f"/shops/{shop.key}/jobs/{job.id}", headers=PARTIAL))
    assert "every 1s" not in done and "Terminé" in done
    assert "<html" in text(admin.get(f"/shops/{shop.key}/jobs/{job.id}", headers=BOOSTED))

    # Without htmx, the button leads to the job's own page.
    response = admin.post(f"/shops/{shop.key}/sync", data={"csrf_token": token})
    assert response.status_code == 303
    assert re.fullmatch(rf"/shops/{shop.key}/jobs/\d+", response.headers["Location"])


def test_backfill_takes_a_date_and_refuses_the_future(
    admin: FlaskClient, token: str, db_session: Session, woo: Shop
) -> None:
    response = admin.post(
        f"/shops/{woo.key}/backfill",
        data={"csrf_token": token, "since": "2999-01-01"},
        headers=PARTIAL,
    )
    assert response.status_code == 422
    assert "La date est dans le futur." in text(response)
    response = admin.post(f"/shops/{woo.key}/backfill", data={"csrf_token": token, "since": ""})
    assert response.status_code == 422 and "<html" in text(response)
    assert db_session.scalar(select(func.count()).select_from(Job)) == 0

    today = dt.datetime.now(dt.UTC).date()
    response = admin.post(
        f"/shops/{woo.key}/backfill",
        data={"csrf_token": token, "since": str(today)},
        headers=PARTIAL,
    )
    assert response.status_code == 200
    job = db_session.scalars(select(Job)).one()
    assert job.kind == "sync.backfill" and job.payload["since"].startswith(str(today))
    assert "Import depuis" in text(response)
    # A job of another shop is not reachable through this one.
    other = make_shop(db_session, "other")
    db_session.commit()
    assert admin.get(f"/shops/{other.key}/jobs/{job.id}").status_code == 404


def test_the_shop_list_page_shows_each_shop(
    admin: FlaskClient, db_session: Session, woo: Shop
) -> None:
    page = text(admin.get("/shops/"))
    assert "Atelier Paris" in page and "WooCommerce" in page
    assert f'href="/shops/{woo.key}"' in page
