"""Invoices and credit notes over the JSON API, as an ERP or an accountant's tool uses them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tests.api.test_api import Api, TokenFor, error_of, token_for  # noqa: F401
from tests.documents.conftest import complete_company
from tests.factories import make_customer, make_line, make_order, make_shop
from web.app import create_app
from web.models import CompanySettings, Document, Shop
from web.models.enums import DocumentKind, DocumentState, Role
from web.models.orders import Order
from web.services import users
from web.services.users import create_user

pytestmark = pytest.mark.usefixtures("token_for")

SHAPE = {
    "id",
    "kind",
    "reference",
    "issue_date",
    "currency",
    "total_net",
    "total_tax",
    "total_gross",
    "corrects_id",
    "pdf_url",
}


@pytest.fixture()
def api(client: FlaskClient, token_for: TokenFor) -> Api:  # noqa: F811
    return Api(client, token_for(Role.MANAGER))


def new_order(session: Session, **overrides: Any) -> Order:
    """Two mugs at 20 %, a tea at 5.5 % and 6.00 of shipping: 35.50 in all."""
    shop = make_shop(session, "boutique") if "shop" not in overrides else overrides.pop("shop")
    tea = make_line(
        "TEA",
        1,
        "5.50",
        tax_rate=Decimal("5.5"),
        total_net=Decimal("5.21"),
        tax_amount=Decimal("0.29"),
    )
    values: dict[str, Any] = {
        "shipping_total": Decimal("6.00"),
        "shipping_tax": Decimal("1.00"),
        "shipping_label": "Colissimo",
        "grand_total": Decimal("35.50"),
        "billing_address": {
            "first_name": "Marie",
            "last_name": "Curie",
            "line1": "11 rue Pierre et Marie Curie",
            "postcode": "75005",
            "city": "Paris",
            "country_code": "FR",
        },
    }
    values.update(overrides)
    customer = make_customer(session, None, "Marie", "Curie")
    return make_order(session, shop, [make_line("MUG", 2, "12.00"), tea], customer, **values)


@pytest.fixture()
def order(db_session: Session) -> Order:
    complete_company(db_session)
    order = new_order(db_session)
    db_session.commit()
    return order


def invoices_of(session: Session, order: Order) -> list[Document]:
    session.expire_all()
    return list(
        session.scalars(
            select(Document)
            .where(Document.order_id == order.id, Document.kind == DocumentKind.INVOICE)
            .order_by(Document.id)
        )
    )


def created(response: TestResponse, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body: dict[str, Any] = response.get_json()
    return body


# --- Issuing invoices ------------------------------------------------------------------------


def test_no_body_invoices_everything_shipping_included(
    api: Api, db_session: Session, order: Order
) -> None:
    invoice = created(api.post(f"/orders/{order.id}/invoices"))
    assert SHAPE | {"order_id", "buyer_name", "reason", "cancels_invoice", "lines"} == set(invoice)
    assert invoice["kind"] == "invoice" and invoice["reference"].startswith("FA-")
    assert invoice["reference"].endswith("-000001")
    assert invoice["issue_date"] == dt.date.fromisoformat(invoice["issue_date"]).isoformat()
    assert (invoice["total_net"], invoice["total_tax"], invoice["total_gross"]) == (
        "30.21",
        "5.29",
        "35.50",
    )
    assert invoice["buyer_name"] == "Marie Curie" and invoice["order_id"] == order.id
    assert [(line["kind"], line["sku"], line["quantity"]) for line in invoice["lines"]] == [
        ("product", "MUG", "2"),
        ("product", "TEA", "1"),
        ("shipping", "", "1"),
    ]
    assert invoice["pdf_url"] == f"/api/v1/documents/{invoice['id']}/pdf"
    pdf = api.client.get(invoice["pdf_url"], headers=api.headers())
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    [stored] = invoices_of(db_session, order)
    assert hashlib.sha256(pdf.data).hexdigest() == stored.pdf_sha256
    assert f"{stored.reference}.pdf" in pdf.headers["Content-Disposition"]


def test_part_then_the_rest_then_nothing_left_is_a_409(
    api: Api, db_session: Session, order: Order
) -> None:
    mug = order.lines[0].id
    first = created(
        api.post(f"/orders/{order.id}/invoices", {"lines": [{"line_id": mug, "quantity": 1}]})
    )
    assert [(line["kind"], line["order_line_id"], line["quantity"]) for line in first["lines"]] == [
        ("product", mug, "1"),
        ("shipping", None, "1"),
    ]
    assert first["total_gross"] == "18.00"
    rest = created(api.post(f"/orders/{order.id}/invoices", {}))
    assert Decimal(first["total_gross"]) + Decimal(rest["total_gross"]) == order.grand_total
    assert rest["reference"].endswith("-000002")
    refused = error_of(api.post(f"/orders/{order.id}/invoices"), 409)
    assert refused["reason"] == "nothing is left to invoice"
    assert refused["error"] == "cannot issue an invoice: nothing is left to invoice"
    assert len(invoices_of(db_session, order)) == 2


def test_incomplete_company_is_a_409_naming_the_fields_and_takes_no_number(
    api: Api, db_session: Session, order: Order
) -> None:
    company = db_session.get(CompanySettings, 1)
    assert company is not None
    company.siren, company.vat_number = "", ""
    db_session.commit()
    refused = error_of(api.post(f"/orders/{order.id}/invoices"), 409)
    assert set(refused["fields"]) == {"siren", "vat_number"}
    assert "company settings are incomplete" in refused["reason"]
    assert invoices_of(db_session, order) == []
    complete_company(db_session)
    db_session.commit()
    invoice = created(api.post(f"/orders/{order.id}/invoices"))
    assert invoice["reference"].endswith("-000001")


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [{"line_id": 1}],
        [{"line_id": "1", "quantity": 1}],
        [{"line_id": 1, "quantity": 0}],
        [{"line_id": 1, "quantity": 1.5}],
        [{"line_id": 1, "quantity": 1, "price": "0.01"}],
        {"1": 1},
        "all",
    ],
)
def test_malformed_lines_are_a_422_on_lines(api: Api, order: Order, lines: object) -> None:
    refused = error_of(api.post(f"/orders/{order.id}/invoices", {"lines": lines}), 422)
    assert "lines" in refused["fields"]


def test_lines_the_order_cannot_invoice_are_a_422_per_line(
    api: Api, db_session: Session, order: Order
) -> None:
    other = new_order(db_session, shop=order.shop)
    db_session.commit()
    mug, tea = (line.id for line in order.lines)
    body = {
        "lines": [
            {"line_id": mug, "quantity": 3},
            {"line_id": tea, "quantity": 1},
            {"line_id": other.lines[0].id, "quantity": 1},
        ]
    }
    refused = error_of(api.post(f"/orders/{order.id}/invoices", body), 422)
    assert refused["fields"] == {
        f"line {mug}": "only 2 left to invoice",
        f"line {other.lines[0].id}": "not a line of this order",
    }
    assert invoices_of(db_session, order) == []
    unknown = error_of(api.post(f"/orders/{order.id}/invoices", {"amount": "5"}), 422)
    assert unknown["fields"] == {"amount": "unknown field"}
    error_of(api.post(f"/orders/{order.id + 1000}/invoices"), 404)


def test_the_same_idempotency_key_answers_the_first_invoice(
    api: Api, client: FlaskClient, db_session: Session, order: Order
) -> None:
    def send(order_id: int, key: str) -> TestResponse:
        return client.post(
            f"/api/v1/orders/{order_id}/invoices",
            data=json.dumps({"lines": [{"line_id": order.lines[0].id, "quantity": 1}]}),
            content_type="application/json",
            headers={**api.headers(), "Idempotency-Key": key},
        )

    first = created(send(order.id, "erp-7f3a"))
    again = created(send(order.id, "erp-7f3a"), 200)
    assert again == first
    assert len(invoices_of(db_session, order)) == 1
    other = new_order(db_session, shop=order.shop)
    db_session.commit()
    reused = error_of(send(other.id, "erp-7f3a"), 422)
    assert "Idempotency-Key" in reused["fields"]
    # No number was taken by the replay nor by the refusal: the next one follows.
    created_next = created(api.post(f"/orders/{other.id}/invoices"))
    assert created_next["reference"].endswith("-000002")
    long_key = error_of(send(order.id, "k" * 121), 422)
    assert "Idempotency-Key" in long_key["fields"]


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.VIEWER])
def test_only_managers_and_admins_issue(
    client: FlaskClient,
    db_session: Session,
    token_for: TokenFor,  # noqa: F811
    order: Order,
    role: Role,
) -> None:
    refused = error_of(Api(client, token_for(role)).post(f"/orders/{order.id}/invoices"), 403)
    assert role.value in refused["error"]
    assert invoices_of(db_session, order) == []
    admin = Api(client, token_for(Role.ADMIN))
    assert admin.post(f"/orders/{order.id}/invoices").status_code == 201


def test_the_warehouse_reads_no_documents(
    client: FlaskClient,
    api: Api,
    token_for: TokenFor,  # noqa: F811
    order: Order,
) -> None:
    invoice = created(api.post(f"/orders/{order.id}/invoices"))
    warehouse = Api(client, token_for(Role.WAREHOUSE))
    error_of(warehouse.get("/documents"), 403)
    error_of(warehouse.get(f"/documents/{invoice['id']}"), 403)
    error_of(warehouse.get(f"/documents/{invoice['id']}/pdf"), 403)
    viewer = Api(client, token_for(Role.VIEWER))
    assert viewer.get("/documents").get_json()["total"] == 1
    assert viewer.get(f"/documents/{invoice['id']}/pdf").status_code == 200


# --- Reading documents -----------------------------------------------------------------------


def issued_row(
    session: Session, order: Order, kind: DocumentKind, number: int, day: dt.date
) -> Document:
    """An issued document as a row (no PDF), to list by date without rendering."""
    prefix = {"invoice": "FA", "credit_note": "AV", "delivery_note": "BL"}[kind.value]
    document = Document(
        order=order,
        kind=kind,
        state=DocumentState.ISSUED,
        series=f"{prefix}-{day.year}",
        number=number,
        reference=f"{prefix}-{day.year}-{number:06d}",
        issue_date=day,
        total_net=Decimal("10.00"),
        total_tax=Decimal("2.00"),
        total_gross=Decimal("12.00"),
        buyer_name="Marie Curie",
    )
    session.add(document)
    return document


def test_the_list_filters_by_kind_and_issue_dates_and_pages(
    api: Api, db_session: Session, order: Order
) -> None:
    march = [dt.date(2026, 3, day) for day in (1, 2, 3, 4)]
    for number, day in enumerate(march, start=1):
        issued_row(db_session, order, DocumentKind.INVOICE, number, day)
    issued_row(db_session, order, DocumentKind.CREDIT_NOTE, 1, march[2])
    issued_row(db_session, order, DocumentKind.DELIVERY_NOTE, 1, march[0])
    db_session.add(Document(order=order, kind=DocumentKind.INVOICE))  # a draft: never listed
    db_session.commit()

    everything = api.get("/documents").get_json()
    assert everything["total"] == 6 and everything["next_page"] is None
    ids = [item["id"] for item in everything["documents"]]
    assert ids == sorted(ids)
    item = everything["documents"][0]
    assert set(item) == SHAPE | {"order_id", "buyer_name"}
    assert item["pdf_url"] is None  # these rows have no stored file

    invoices = api.get("/documents", kind="invoice", **{"from": "2026-03-02", "to": "2026-03-03"})
    assert [d["reference"] for d in invoices.get_json()["documents"]] == [
        "FA-2026-000002",
        "FA-2026-000003",
    ]
    credits = api.get("/documents", kind="credit_note").get_json()["documents"]
    assert [d["reference"] for d in credits] == ["AV-2026-000001"]
    first = api.get("/documents", kind="invoice", per_page=3).get_json()
    assert (len(first["documents"]), first["total"], first["next_page"]) == (3, 4, 2)
    second = api.get("/documents", kind="invoice", per_page=3, page=2).get_json()
    assert [d["reference"] for d in second["documents"]] == ["FA-2026-000004"]
    assert api.get("/documents", page=9).get_json()["documents"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "quote"}, "kind"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"to": "2026-03-02T10:00:00"}, "to"),
        ({"page": "0"}, "page"),
        ({"per_page": "101"}, "per_page"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_them(
    api: Api, order: Order, query: dict[str, str], field: str
) -> None:
    assert field in error_of(api.get("/documents", **query), 400)["fields"]


def test_one_document_with_its_lines_and_the_pdf_404s(
    api: Api, db_session: Session, order: Order
) -> None:
    invoice = created(api.post(f"/orders/{order.id}/invoices"))
    assert api.get(f"/documents/{invoice['id']}").get_json() == invoice
    error_of(api.get(f"/documents/{invoice['id'] + 1000}"), 404)
    error_of(api.get(f"/documents/{invoice['id'] + 1000}/pdf"), 404)
    draft = Document(order=order, kind=DocumentKind.INVOICE)
    db_session.add(draft)
    row = issued_row(db_session, order, DocumentKind.CREDIT_NOTE, 7, dt.date(2026, 3, 2))
    db_session.commit()
    error_of(api.get(f"/documents/{draft.id}"), 404)
    error_of(api.get(f"/documents/{draft.id}/pdf"), 404)
    error_of(api.get(f"/documents/{row.id}/pdf"), 404)  # issued, but with no stored file


def test_the_order_lists_its_documents_with_the_document_shape(
    api: Api, db_session: Session, order: Order
) -> None:
    assert api.get(f"/orders/{order.id}").get_json()["documents"] == []
    invoice = created(api.post(f"/orders/{order.id}/invoices"))
    [listed] = api.get(f"/orders/{order.id}").get_json()["documents"]
    assert listed == {key: invoice[key] for key in SHAPE}
    count = db_session.scalar(select(func.count(Document.id)))
    assert count == 1


# --- Credit notes ----------------------------------------------------------------------------


@pytest.fixture()
def invoice(api: Api, order: Order) -> dict[str, Any]:
    """The whole order invoiced: 35.50 of mugs, tea and shipping."""
    return created(api.post(f"/orders/{order.id}/invoices"))


def credit(api: Api, invoice: dict[str, Any], body: dict[str, Any]) -> TestResponse:
    return api.post(f"/documents/{invoice['id']}/credit-notes", body)


def test_a_credit_note_by_lines_never_credits_more_than_is_left(
    api: Api, invoice: dict[str, Any]
) -> None:
    mug = next(line for line in invoice["lines"] if line["sku"] == "MUG")
    body = {"lines": [{"line_id": mug["id"], "quantity": 1}], "reason": "Mug cassé"}
    note = created(credit(api, invoice, body))
    assert note["kind"] == "credit_note" and note["reference"].startswith("AV-")
    assert note["reference"].endswith("-000001") and note["corrects_id"] == invoice["id"]
    assert (note["total_net"], note["total_tax"], note["total_gross"]) == ("10.00", "2.00", "12.00")
    assert note["reason"] == "Mug cassé" and note["cancels_invoice"] is False
    assert [(line["kind"], line["sku"], line["quantity"]) for line in note["lines"]] == [
        ("product", "MUG", "1")
    ]
    body["lines"] = [{"line_id": mug["id"], "quantity": 2}]
    refused = error_of(credit(api, invoice, body), 422)
    assert list(refused["fields"]) == [f"line {mug['id']}"]
    assert "1 left" in refused["fields"][f"line {mug['id']}"]
    order_line = {"lines": [{"line_id": mug["order_line_id"], "quantity": 1}], "reason": "x"}
    if mug["order_line_id"] != mug["id"]:  # an order line's id is no line of the invoice
        assert error_of(credit(api, invoice, order_line), 422)["fields"]


def test_a_credit_note_by_amount_splits_it_over_the_rates(
    api: Api, invoice: dict[str, Any]
) -> None:
    note = created(credit(api, invoice, {"amount": "10.00", "reason": "Geste commercial"}))
    assert note["total_gross"] == "10.00"
    assert Decimal(note["total_net"]) + Decimal(note["total_tax"]) == Decimal("10.00")
    assert {line["kind"] for line in note["lines"]} == {"amount"}
    assert {line["tax_rate"] for line in note["lines"]} == {"20.00", "5.50"}
    number = created(credit(api, invoice, {"amount": 2.5, "reason": "Retard"}))
    assert number["total_gross"] == "2.50"
    too_much = error_of(credit(api, invoice, {"amount": "30.00", "reason": "Tout"}), 422)
    assert "23.00" in too_much["fields"]["amount"]  # what is left: 35.50 - 12.50
    for amount in ("-1", "0", "1.005", "1e999999", "dix", True, [1]):
        refused = error_of(credit(api, invoice, {"amount": amount, "reason": "Essai"}), 422)
        assert "amount" in refused["fields"], amount


def test_cancelling_an_invoice_frees_the_order_for_a_corrected_one(
    api: Api, db_session: Session, order: Order, invoice: dict[str, Any]
) -> None:
    note = created(credit(api, invoice, {"cancel": True, "reason": "Mauvaise adresse"}))
    assert note["cancels_invoice"] is True and note["total_gross"] == invoice["total_gross"]
    again = error_of(credit(api, invoice, {"cancel": True, "reason": "Encore"}), 409)
    assert again["reason"] == "nothing is left to credit"
    corrected = created(api.post(f"/orders/{order.id}/invoices"))
    assert corrected["total_gross"] == invoice["total_gross"]
    assert corrected["reference"].endswith("-000002")
    assert len(invoices_of(db_session, order)) == 2


def test_everything_left_without_cancelling_frees_nothing(
    api: Api, order: Order, invoice: dict[str, Any]
) -> None:
    note = created(credit(api, invoice, {"reason": "Remboursement intégral"}))
    assert note["cancels_invoice"] is False and note["total_gross"] == "35.50"
    error_of(api.post(f"/orders/{order.id}/invoices"), 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "5.00"}, "reason"),
        ({"amount": "5.00", "reason": "  "}, "reason"),
        ({"amount": "5.00", "reason": 5}, "reason"),
        ({"amount": "5.00", "reason": "x" * 501}, "reason"),
        ({"amount": "5.00", "lines": [{"line_id": 1, "quantity": 1}], "reason": "x"}, "amount"),
        ({"cancel": True, "amount": "5.00", "reason": "x"}, "cancel"),
        ({"cancel": "yes", "reason": "x"}, "cancel"),
        ({"lines": [], "reason": "x"}, "lines"),
        ({"lines": [{"line_id": 1, "quantity": -1}], "reason": "x"}, "lines"),
        ({"reason": "x", "refund": True}, "refund"),
    ],
)
def test_malformed_credit_notes_are_a_422_naming_the_field(
    api: Api, db_session: Session, invoice: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    assert field in error_of(credit(api, invoice, body), 422)["fields"]
    assert db_session.scalars(select(Document).where(Document.corrects_id.is_not(None))).all() == []


def test_only_an_issued_invoice_can_be_credited(api: Api, invoice: dict[str, Any]) -> None:
    note = created(credit(api, invoice, {"amount": "1.00", "reason": "Essai"}))
    refused = error_of(credit(api, note, {"amount": "1.00", "reason": "Essai"}), 409)
    assert refused["error"].startswith("cannot issue a credit note: ")
    assert "invoice" in refused["reason"]
    missing = {"id": invoice["id"] + 1000}
    error_of(credit(api, missing, {"amount": "1.00", "reason": "Essai"}), 404)
    error_of(api.post(f"/documents/{invoice['id']}/credit-notes"), 400)  # no body


def test_the_same_key_answers_the_first_credit_note(
    api: Api, client: FlaskClient, db_session: Session, order: Order, invoice: dict[str, Any]
) -> None:
    def send(document_id: int, key: str) -> TestResponse:
        return client.post(
            f"/api/v1/documents/{document_id}/credit-notes",
            data=json.dumps({"amount": "5.00", "reason": "Retour partiel"}),
            content_type="application/json",
            headers={**api.headers(), "Idempotency-Key": key},
        )

    first = created(send(invoice["id"], "refund-991"))
    assert created(send(invoice["id"], "refund-991"), 200) == first
    notes = db_session.scalars(select(Document).where(Document.corrects_id == invoice["id"]))
    assert len(notes.all()) == 1
    other = created(api.post(f"/orders/{new_order(db_session, shop=order.shop).id}/invoices"))
    assert "Idempotency-Key" in error_of(send(other["id"], "refund-991"), 422)["fields"]
    # A key an invoice was issued with is not a credit note's either.
    with_key = client.post(
        f"/api/v1/orders/{order.id}/invoices", headers={**api.headers(), "Idempotency-Key": "k1"}
    )
    error_of(with_key, 409)  # nothing left to invoice: the key was not stored
    assert created(send(invoice["id"], "k1"))["kind"] == "credit_note"


def test_the_warehouse_and_viewers_issue_no_credit_note(
    client: FlaskClient,
    db_session: Session,
    token_for: TokenFor,  # noqa: F811
    invoice: dict[str, Any],
) -> None:
    for role in (Role.WAREHOUSE, Role.VIEWER):
        other = Api(client, token_for(role))
        error_of(credit(other, invoice, {"amount": "1.00", "reason": "Essai"}), 403)
    assert db_session.scalars(select(Document).where(Document.corrects_id.is_not(None))).all() == []


# --- Two integrations at once (PostgreSQL) ---------------------------------------------------


def _race_setup(factory: sessionmaker[Session]) -> tuple[int, str]:
    """A fresh order and a manager's token, committed where both apps see them."""
    with factory.begin() as session:
        complete_company(session)
        shop = session.scalars(select(Shop).where(Shop.key == "boutique")).first()
        order = new_order(session, **({"shop": shop} if shop else {}))
        manager, _ = create_user(session, f"race{order.id}@example.com", Role.MANAGER)
        token = users.create_api_token(session, manager, "race")
        return order.id, token


def _post_at_once(
    app_overrides: dict[str, Any], url: str, path: str, token: str, keys: tuple[str, str]
) -> list[TestResponse]:
    """Two apps (two engines, as two workers) POST at the same moment; both answers."""
    clients = [create_app({**app_overrides, "DATABASE_URL": url}).test_client() for _ in keys]
    barrier = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def send(index: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": keys[index]}
        barrier.wait()
        answers[index] = clients[index].post(path, headers=headers)

    threads = [threading.Thread(target=send, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_the_same_key_sent_twice_at_once_issues_one_invoice(
    app_overrides: dict[str, Any],
    parallel_database: str,
    two_processes: list[sessionmaker[Session]],
) -> None:
    order_id, token = _race_setup(two_processes[0])
    path = f"/api/v1/orders/{order_id}/invoices"
    answers = _post_at_once(app_overrides, parallel_database, path, token, ("erp-1", "erp-1"))
    assert sorted(answer.status_code for answer in answers) == [200, 201], answers
    assert answers[0].get_json()["id"] == answers[1].get_json()["id"]
    with two_processes[0]() as session:
        count = session.scalar(select(func.count()).where(Document.order_id == order_id))
    assert count == 1


def test_two_invoices_of_everything_at_once_invoice_it_once(
    app_overrides: dict[str, Any],
    parallel_database: str,
    two_processes: list[sessionmaker[Session]],
) -> None:
    order_id, token = _race_setup(two_processes[0])
    path = f"/api/v1/orders/{order_id}/invoices"
    answers = _post_at_once(app_overrides, parallel_database, path, token, ("desk-a", "desk-b"))
    assert sorted(answer.status_code for answer in answers) == [201, 409], answers
    [refused] = [answer.get_json() for answer in answers if answer.status_code == 409]
    assert refused["reason"] == "nothing is left to invoice"
