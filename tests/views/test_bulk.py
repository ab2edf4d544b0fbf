"""Bulk actions and exports from the order list, and the banner of orders arrived since."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token, log_in
from tests.factories import make_order, make_shop
from web import queue
from web.models import Job, Shop, User
from web.models.enums import CommercialState, FulfilmentState, JobState, Role
from web.models.orders import Order
from web.services import bulk

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


@pytest.fixture()
def shop(db_session: Session) -> Shop:
    shop = make_shop(db_session, "bulk-shop")
    db_session.commit()
    return shop


@pytest.fixture()
def orders(db_session: Session, shop: Shop) -> list[Order]:
    """Two new orders and one already shipped."""
    made = [
        make_order(db_session, shop),
        make_order(db_session, shop),
        make_order(db_session, shop, fulfilment_state=FulfilmentState.SHIPPED),
    ]
    db_session.commit()
    return made


def post(client: FlaskClient, data: dict[str, Any], htmx: bool = True) -> Any:
    """POST the bulk form as the page sends it (token in the htmx header or in the form)."""
    token = csrf_token(client, "/orders/")
    if htmx:
        return client.post("/orders/bulk", data=data, headers={**PARTIAL, "X-CSRFToken": token})
    return client.post("/orders/bulk", data={**data, "csrf_token": token})


def job_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job)) or 0


def ids(*orders: Order) -> list[str]:
    return [str(order.id) for order in orders]


# --- The list --------------------------------------------------------------------------------


def test_the_list_offers_a_checkbox_per_order_and_the_editor_actions(
    client: FlaskClient, login_as: Callable[..., User], orders: list[Order]
) -> None:
    login_as(Role.MANAGER)
    html = client.get("/orders/").get_data(as_text=True)
    boxes = re.findall(r'name="ids" value="(\d+)" form="bulk-form"', html)
    assert sorted(boxes) == sorted(ids(*orders))
    assert 'id="bulk-page"' in html and 'id="bulk-form"' in html
    assert 'name="op" value="hold"' in html and 'name="op" value="comment"' in html
    assert 'name="op" value="export_csv"' in html

    partial = client.get("/orders/?shop=bulk-shop", headers=PARTIAL).get_data(as_text=True)
    assert "<html" not in partial and 'id="bulk-bar"' in partial
    # The form itself stays outside the swapped region, so it is never replaced mid-job.
    assert 'id="bulk-form"' not in partial
    assert '<input type="hidden" form="bulk-form" name="shop" value="bulk-shop">' in partial


def test_a_viewer_is_offered_the_exports_only(
    client: FlaskClient, login_as: Callable[..., User], orders: list[Order]
) -> None:
    login_as(Role.VIEWER)
    html = client.get("/orders/").get_data(as_text=True)
    assert 'name="op" value="export_csv"' in html and 'name="op" value="export_json"' in html
    assert 'name="op" value="hold"' not in html and 'name="op" value="comment"' not in html


# --- Roles and CSRF --------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["hold", "validate", "cancel", "comment"])
def test_a_viewer_cannot_change_or_comment_orders(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    orders: list[Order],
    op: str,
) -> None:
    login_as(Role.VIEWER)
    data = {"op": op, "ids": ids(*orders), "reason": "why not", "text": "hello"}
    response = post(client, data)
    assert response.status_code == 403
    assert job_count(db_session) == 0


def test_a_viewer_may_export(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, orders: list[Order]
) -> None:
    login_as(Role.VIEWER)
    response = post(client, {"op": "export_csv", "ids": ids(*orders)})
    assert response.status_code == 200
    assert job_count(db_session) == 1


def test_the_warehouse_cannot_reach_bulk_work(
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
    orders: list[Order],
) -> None:
    manager = make_user(Role.MANAGER)
    job = queue.enqueue(
        db_session, "orders.export", {"selection": {"ids": [1]}, "format": "csv"}, manager.id
    )
    db_session.commit()
    login_as(Role.WAREHOUSE)
    token = csrf_token(client, "/warehouse/")
    response = client.post(
        "/orders/bulk",
        data={"op": "export_csv", "ids": ids(*orders), "csrf_token": token},
    )
    assert response.status_code == 403
    assert client.get(f"/orders/bulk/jobs/{job.id}").status_code == 403
    assert client.get("/orders/arrivals?after=0").status_code == 403
    assert job_count(db_session) == 1


def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, orders: list[Order]
) -> None:
    login_as(Role.MANAGER)
    response = client.post(
        "/orders/bulk", data={"op": "validate", "ids": ids(*orders)}, headers=PARTIAL
    )
    assert response.status_code == 400
    assert job_count(db_session) == 0


def test_an_unknown_operation_is_a_bad_request(
    client: FlaskClient, login_as: Callable[..., User], orders: list[Order]
) -> None:
    login_as(Role.ADMIN)
    assert post(client, {"op": "delete", "ids": ids(*orders)}).status_code == 400


# --- Form errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"op": "hold", "reason": "   "},
        {"op": "cancel"},
        {"op": "comment", "text": "", "visibility": "internal"},
        {"op": "validate", "ids": []},
        {"op": "validate", "ids": ["²", "0", "2147483648", "9" * 5000]},
    ],
)
def test_a_missing_reason_or_selection_is_a_form_error_and_queues_nothing(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    orders: list[Order],
    data: dict[str, Any],
) -> None:
    login_as(Role.MANAGER)
    response = post(client, {"ids": ids(*orders), **data})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in html and 'class="inline-errors bulk-errors" role="alert"' in html
    assert job_count(db_session) == 0

    page = post(client, {"ids": ids(*orders), **data}, htmx=False)
    assert page.status_code == 422 and "<html" in page.get_data(as_text=True)
    assert job_count(db_session) == 0


# --- Jobs: progress and outcome --------------------------------------------------------------


def test_a_hold_shows_its_progress_then_the_outcome_with_the_refused_orders(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    orders: list[Order],
) -> None:
    manager = login_as(Role.MANAGER)
    response = post(client, {"op": "hold", "reason": "Stock count", "ids": ids(*orders)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    job = db_session.scalars(select(Job)).one()
    assert job.kind == "orders.bulk_action" and job.created_by_id == manager.id
    assert job.payload["reason"] == "Stock count"
    # Still queued: the fragment polls itself every second.
    assert f'hx-get="/orders/bulk/jobs/{job.id}" hx-trigger="every 1s"' in html
    assert "HX-Trigger" not in response.headers

    assert queue.run_pending(session_factory) == 1
    status = client.get(f"/orders/bulk/jobs/{job.id}", headers=PARTIAL)
    html = status.get_data(as_text=True)
    assert "<html" not in html and 'data-state="done"' in html
    assert "every 1s" not in html
    assert 'data-done="2"' in html and 'data-refused="1"' in html
    shipped = orders[2]
    assert f'<a href="/orders/{shipped.id}">{shipped.number}</a>' in html
    # The list refreshes itself to show the new states.
    assert status.headers["HX-Trigger"] == "orders-changed"

    full = client.get(f"/orders/bulk/jobs/{job.id}", headers=BOOSTED)
    assert "<html" in full.get_data(as_text=True)
    assert "HX-Trigger" not in full.headers

    listing = client.get("/orders/?on_hold=1").get_data(as_text=True)
    assert sorted(re.findall(r'name="ids" value="(\d+)"', listing)) == sorted(ids(*orders[:2]))


def test_without_htmx_the_form_ends_in_a_redirect_to_the_job_page(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, orders: list[Order]
) -> None:
    login_as(Role.ADMIN)
    response = post(
        client,
        {"op": "comment", "text": "Checked", "visibility": "internal", "ids": ids(orders[0])},
        htmx=False,
    )
    job = db_session.scalars(select(Job)).one()
    assert response.status_code == 303
    assert response.headers["Location"] == f"/orders/bulk/jobs/{job.id}"
    assert "<html" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_all_matching_sends_the_filters_and_the_newest_order_the_list_had(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    shop: Shop,
    orders: list[Order],
) -> None:
    login_as(Role.MANAGER)
    listing = client.get("/orders/?shop=bulk-shop", headers=PARTIAL).get_data(as_text=True)
    newest = max(order.id for order in orders)
    assert f'<input type="hidden" form="bulk-form" name="upto" value="{newest}">' in listing
    make_order(db_session, shop)  # arrives while the person decides
    db_session.commit()

    data = {"op": "validate", "scope": "all", "ids": ids(orders[0]), "shop": "bulk-shop"}
    assert post(client, {**data, "upto": str(newest)}).status_code == 200
    job = db_session.scalars(select(Job)).one()
    assert job.payload["selection"] == {"filters": {"shop": "bulk-shop"}, "upto": newest}


def test_all_matching_above_the_cap_is_a_form_error(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    orders: list[Order],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    login_as(Role.MANAGER)
    monkeypatch.setattr(bulk, "MAX_SELECTION", 2)
    response = post(client, {"op": "export_csv", "scope": "all", "shop": "bulk-shop"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'class="inline-errors bulk-errors"' in html
    assert "Plus de 10 000 commandes correspondent aux filtres" in html
    assert job_count(db_session) == 0


def test_only_its_creator_or_an_admin_sees_a_job(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., User],
    db_session: Session,
    orders: list[Order],
) -> None:
    owner, other, admin = make_user(Role.VIEWER), make_user(Role.MANAGER), make_user(Role.ADMIN)
    job = queue.enqueue(
        db_session, "orders.export", {"selection": {"ids": [1]}, "format": "csv"}, owner.id
    )
    sync = queue.enqueue(db_session, "sync.shop", {"shop_id": 1}, owner.id)
    db_session.commit()
    for user, expected in ((owner, 200), (other, 403), (admin, 200)):
        with app.test_client() as each:
            log_in(each, user.email)
            assert each.get(f"/orders/bulk/jobs/{job.id}").status_code == expected
            # Other kinds of job are not bulk jobs.
            assert each.get(f"/orders/bulk/jobs/{sync.id}").status_code == 404


# --- Export download -------------------------------------------------------------------------


def run_export(
    client: FlaskClient, session_factory: sessionmaker[Session], db_session: Session, data: Any
) -> Job:
    assert post(client, data).status_code == 200
    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    return db_session.scalars(select(Job).order_by(Job.id.desc())).first()  # type: ignore[return-value]


def test_the_export_downloads_as_an_attachment_for_its_creator_and_admins_only(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    orders: list[Order],
) -> None:
    login_as(Role.VIEWER)
    job = run_export(
        client, session_factory, db_session, {"op": "export_csv", "ids": ids(*orders[:2])}
    )
    assert job.state == JobState.DONE
    assert Path(job.payload["folder"]) == Path(app.instance_path) / "exports"
    status = client.get(f"/orders/bulk/jobs/{job.id}", headers=PARTIAL).get_data(as_text=True)
    assert f'href="/orders/bulk/jobs/{job.id}/download"' in status
    assert "HX-Trigger" not in client.get(f"/orders/bulk/jobs/{job.id}", headers=PARTIAL).headers

    download = client.get(f"/orders/bulk/jobs/{job.id}/download")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment; filename=orders-")
    assert download.mimetype == "text/csv"
    assert "no-store" in download.headers["Cache-Control"]
    body = download.get_data(as_text=True)
    assert body.startswith("shop,number,")
    assert orders[0].number in body and orders[2].number not in body

    for role, expected in ((Role.MANAGER, 403), (Role.ADMIN, 200)):
        with app.test_client() as each:
            log_in(each, make_user(role).email)
            assert each.get(f"/orders/bulk/jobs/{job.id}/download").status_code == expected

    path = Path(job.payload["folder"]) / job.result["file"]
    stale = path.stat().st_mtime - 25 * 3600
    os.utime(path, (stale, stale))
    assert client.get(f"/orders/bulk/jobs/{job.id}/download").status_code == 410


def test_a_job_that_is_not_a_finished_export_has_nothing_to_download(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    orders: list[Order],
) -> None:
    login_as(Role.MANAGER)
    post(client, {"op": "export_json", "ids": ids(*orders)})
    post(client, {"op": "validate", "ids": ids(*orders)})
    export, action = db_session.scalars(select(Job).order_by(Job.id)).all()
    assert export.state == JobState.QUEUED
    assert client.get(f"/orders/bulk/jobs/{export.id}/download").status_code == 404
    assert client.get(f"/orders/bulk/jobs/{action.id}/download").status_code == 404
    for odd in ("0", "2147483648", "99999999999999999999", "²"):
        assert client.get(f"/orders/bulk/jobs/{odd}").status_code == 404
        assert client.get(f"/orders/bulk/jobs/{odd}/download").status_code == 404


# --- New orders since the page was shown ------------------------------------------------------


def test_the_list_polls_for_orders_newer_than_the_newest_it_saw(
    client: FlaskClient, login_as: Callable[..., User], orders: list[Order]
) -> None:
    login_as(Role.VIEWER)
    html = client.get("/orders/?shop=bulk-shop").get_data(as_text=True)
    newest = max(order.id for order in orders)
    assert f'hx-get="/orders/arrivals?after={newest}&amp;shop=bulk-shop"' in html
    # Only while the tab is visible: the condition is named, static/js/app.js checks it.
    assert 'hx-trigger="every 10s" data-request-if="visible"' in html


def test_an_empty_list_announces_the_very_first_order(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, shop: Shop
) -> None:
    login_as(Role.VIEWER)
    html = client.get("/orders/").get_data(as_text=True)
    assert 'hx-get="/orders/arrivals?after=0"' in html

    make_order(db_session, shop)
    db_session.commit()
    arrivals = client.get("/orders/arrivals?after=0", headers=PARTIAL).get_data(as_text=True)
    assert 'data-count="1"' in arrivals


def test_the_arrivals_count_only_newer_orders_matching_the_filters(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    shop: Shop,
    orders: list[Order],
) -> None:
    login_as(Role.MANAGER)
    after = max(order.id for order in orders)
    empty = client.get(f"/orders/arrivals?after={after}", headers=PARTIAL)
    assert empty.status_code == 200 and empty.get_data(as_text=True).strip() == ""

    make_order(db_session, shop)
    make_order(db_session, shop, commercial_state=CommercialState.CANCELLED)
    make_order(db_session, make_shop(db_session, "elsewhere"))
    db_session.commit()

    def count(query: str) -> str | None:
        response = client.get(f"/orders/arrivals?after={after}{query}", headers=PARTIAL)
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and "<html" not in html
        found = re.search(r'data-count="(\d+)"', html)
        return found.group(1) if found else None

    assert count("") == "3"
    assert count("&shop=bulk-shop") == "2"
    assert count("&shop=bulk-shop&commercial=new") == "1"
    assert count("&shop=nowhere") is None
    # A watermark that is no order id counts nothing rather than failing.
    for odd in ("²", "-1", "abc", "2147483648", "9" * 5000):
        response = client.get(f"/orders/arrivals?after={odd}", headers=PARTIAL)
        assert response.status_code == 200 and 'data-count="' not in response.get_data(True)
    # "Show" lists the orders again with the same filters.
    html = client.get(f"/orders/arrivals?after={after}&shop=bulk-shop&page=4", headers=PARTIAL)
    assert 'hx-get="/orders/?shop=bulk-shop"' in html.get_data(as_text=True)
