"""Credit notes: in full, by lines, by an amount; never more than the invoice; proposals."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_from, log_in, wait_until
from tests.documents.conftest import complete_company, pdf_text, relay_order
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.factories import make_line, make_order, make_shop
from web.documents import credit_notes, delivery_notes, invoices
from web.documents.company import CompanyIncomplete
from web.documents.credit_notes import CreditRefused, issue_credit_note
from web.documents.invoices import Line, money
from web.documents.storage import LocalStorage, sha256
from web.models import Document, DocumentLine, Order, OrderEvent, User
from web.models.enums import CommercialState, DocumentKind, DocumentState, Role, VatRegime
from web.services import order_state, payments, shops
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.sync import run_sync
from web.services.timeline import Actor

ACTOR = Actor.system("test")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def issue(session: Session, order, storage, quantities=None) -> Document:  # type: ignore[no-untyped-def]
    return invoices.issue_invoice(session, order, ACTOR, quantities, storage=storage)


def credit(session: Session, invoice: Document, storage: LocalStorage, **kwargs) -> Document:  # type: ignore[no-untyped-def]
    kwargs.setdefault("reason", "Retour client")
    return issue_credit_note(session, invoice, ACTOR, storage=storage, **kwargs)


def mixed_order(session: Session):  # type: ignore[no-untyped-def]
    """Two mugs at 20 % with a 6.00 discount, a book at 5.5 %, a box of tea at 10 %."""
    shop = make_shop(session, "avoirs")
    mugs = make_line(
        "MUG",
        2,
        "30.00",
        name="Mug",
        discount_amount=Decimal("6.00"),
        total_gross=Decimal("54.00"),
        total_net=Decimal("45.00"),
        tax_amount=Decimal("9.00"),
    )
    book = make_line(
        "LIVRE",
        1,
        "21.10",
        name="Livre",
        tax_rate=Decimal("5.5"),
        total_gross=Decimal("21.10"),
        total_net=Decimal("20.00"),
        tax_amount=Decimal("1.10"),
    )
    tea = make_line(
        "THE",
        3,
        "7.70",
        name="Thé",
        tax_rate=Decimal("10"),
        total_gross=Decimal("23.10"),
        total_net=Decimal("21.00"),
        tax_amount=Decimal("2.10"),
    )
    return make_order(
        session,
        shop,
        [mugs, book, tea],
        discount_total=Decimal("6.00"),
        grand_total=Decimal("98.20"),
    )


def credited(session: Session, invoice: Document) -> tuple[Decimal, dict[int, Decimal]]:
    """Every credit note of the invoice: the total with tax and, per order line, the quantity."""
    notes = credit_notes.credit_notes_of(session, invoice)
    quantities: dict[int, Decimal] = defaultdict(Decimal)
    for note in notes:
        for line in note.lines:
            if line.kind in ("product", "fee") and line.order_line_id is not None:
                quantities[line.order_line_id] += line.quantity
    return sum((note.total_gross or Decimal(0) for note in notes), Decimal(0)), quantities


# --- The three shapes ----------------------------------------------------------------------


def test_a_full_credit_note_credits_every_line_and_cites_the_invoice(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    invoice = issue(db_session, mixed_order(db_session), storage)
    note = credit(db_session, invoice, storage)
    assert note.kind == DocumentKind.CREDIT_NOTE and note.state == DocumentState.ISSUED
    assert note.reference is not None and note.reference.startswith("AV-")
    assert note.corrects_id == invoice.id and not note.cancels_invoice
    assert note.snapshot["corrects"] == {
        "reference": invoice.reference,
        "issue_date": invoice.issue_date.isoformat(),  # type: ignore[union-attr]
    }
    assert note.snapshot["reason"] == "Retour client"
    # Positive amounts, line for line the invoice's (its discount stays a discount).
    assert [(row.kind, row.quantity, row.total_net, row.tax_amount) for row in note.lines] == [
        (row.kind, row.quantity, row.total_net, row.tax_amount) for row in invoice.lines
    ]
    assert (note.total_net, note.total_tax, note.total_gross) == (
        invoice.total_net,
        invoice.total_tax,
        invoice.total_gross,
    )
    assert sha256(storage.get(note.pdf_storage_key or "")) == note.pdf_sha256
    assert note.reference in pdf_text(storage.get(note.pdf_storage_key or ""))
    event = db_session.scalars(
        select(OrderEvent).where(OrderEvent.kind == "credit_note.issued")
    ).one()
    assert event.details["corrects"] == invoice.reference
    # Nothing is left: a second one is refused, and so is a refund on top.
    with pytest.raises(InvalidTransition, match="nothing is left"):
        credit(db_session, invoice, storage)


def test_by_lines_the_parts_are_prorated_and_the_last_takes_what_is_left(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = mixed_order(db_session)
    invoice = issue(db_session, order, storage)
    tea = next(row for row in invoice.lines if row.sku == "THE")
    mugs = next(row for row in invoice.lines if row.sku == "MUG" and row.kind == "product")
    mug_discount = next(row for row in invoice.lines if row.kind == "discount")

    first = credit(db_session, invoice, storage, lines={tea.id: Decimal(1), mugs.id: Decimal(1)})
    assert [(row.kind, row.sku, row.quantity) for row in first.lines] == [
        ("product", "MUG", Decimal(1)),
        ("discount", "MUG", Decimal(1)),  # the discount follows its product
        ("product", "THE", Decimal(1)),
    ]
    assert first.lines[1].total_net == money(mug_discount.total_net / 2)
    second = credit(db_session, invoice, storage, lines={tea.id: Decimal(1)})
    last = credit(db_session, invoice, storage, lines={tea.id: Decimal(1)})
    parts = [row for note in (first, second, last) for row in note.lines if row.sku == "THE"]
    assert sum(row.total_net for row in parts) == tea.total_net
    assert sum(row.tax_amount for row in parts) == tea.tax_amount

    with pytest.raises(ValidationFailed) as refused:
        credit(db_session, invoice, storage, lines={tea.id: Decimal(1), mugs.id: Decimal(2)})
    assert refused.value.errors == {
        f"line {tea.id}": "only 0 left to credit",
        f"line {mugs.id}": "only 1 left to credit",
    }
    with pytest.raises(ValidationFailed, match="cannot be issued") as refused:
        credit(db_session, invoice, storage, lines={mug_discount.id: Decimal(1)})
    assert refused.value.errors == {
        f"line {mug_discount.id}": "a discount is credited with its product"
    }
    other = relay_order(db_session)
    with pytest.raises(ValidationFailed):
        credit(db_session, invoice, storage, lines={other.lines[0].id + 10_000: Decimal(1)})
    total, quantities = credited(db_session, invoice)
    assert quantities[tea.order_line_id] == 3  # type: ignore[index]
    assert total < invoice.total_gross  # type: ignore[operator]


def test_by_amount_the_vat_is_split_over_the_rates_and_adds_up_to_the_amount(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    invoice = issue(db_session, mixed_order(db_session), storage)
    note = credit(db_session, invoice, storage, amount=Decimal("10.00"), reason="Geste commercial")
    assert note.total_gross == Decimal("10.00")
    assert {row.kind for row in note.lines} == {"amount"}
    assert {row.name for row in note.lines} == {"Geste commercial"}
    by_rate = {row.tax_rate.normalize(): row for row in note.lines}
    assert set(by_rate) == {Decimal(20), Decimal(10), Decimal("5.5")}
    for row in note.lines:
        assert row.total_net + row.tax_amount == row.total_gross
    # In proportion to what each rate holds: 54.00 / 98.20 of 10.00 at 20 %, and so on.
    assert by_rate[Decimal(20)].total_gross == Decimal("5.50")
    assert (by_rate[Decimal(20)].total_net, by_rate[Decimal(20)].tax_amount) == (
        Decimal("4.58"),
        Decimal("0.92"),
    )
    assert by_rate[Decimal("5.5")].total_gross == Decimal("2.15")
    assert by_rate[Decimal(10)].total_gross == Decimal("2.35")
    taxes = {tax["rate"]: tax for tax in note.snapshot["taxes"]}
    assert set(taxes) == {"20.00", "10.00", "5.50"}

    with pytest.raises(ValidationFailed) as refused:
        credit(db_session, invoice, storage, amount=Decimal("88.21"))
    assert refused.value.errors == {"amount": "only 88.20 left to credit"}
    for wrong in (Decimal("0"), Decimal("-1"), Decimal("1.005")):
        with pytest.raises(ValidationFailed):
            credit(db_session, invoice, storage, amount=wrong)
    rest = credit(db_session, invoice, storage, amount=Decimal("88.20"))
    assert rest.total_gross == Decimal("88.20")
    # Each rate now credited exactly: net and VAT, as invoiced.
    for rate, tax in {t["rate"]: t for t in invoice.snapshot["taxes"]}.items():
        got = [
            row
            for n in (note, rest)
            for row in n.lines
            if str(row.tax_rate.quantize(Decimal("0.01"))) == rate
        ]
        assert sum(row.total_net for row in got) == Decimal(tax["base"])
        assert sum(row.tax_amount for row in got) == Decimal(tax["tax"])


def test_under_the_franchise_a_credit_by_amount_carries_no_vat(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session, vat_regime=VatRegime.FRANCHISE, vat_number="")
    invoice = issue(db_session, relay_order(db_session), storage)
    note = credit(db_session, invoice, storage, amount=Decimal("10.00"))
    assert [(row.tax_category, row.tax_amount, row.total_net) for row in note.lines] == [
        ("E", Decimal("0.00"), Decimal("10.00"))
    ]
    assert note.snapshot["vat_exemption"] == "TVA non applicable, art. 293 B du CGI"


def test_never_more_than_the_invoice_when_amounts_and_lines_mix(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    invoice = issue(db_session, mixed_order(db_session), storage)
    book = next(row for row in invoice.lines if row.sku == "LIVRE")
    credit(db_session, invoice, storage, amount=Decimal("90.00"))
    # The book's line is all there, but its rate has 21.10 − 19.34 left.
    with pytest.raises(ValidationFailed) as refused:
        credit(db_session, invoice, storage, lines={book.id: Decimal(1)})
    assert refused.value.errors == {"rate 5.50": "only 1.76 left to credit at 5.5 % VAT"}
    assert isinstance(refused.value, CreditRefused)
    assert refused.value.messages["rate 5.50"] == (
        "only %(amount)s left to credit at %(rate)s %% VAT",
        {"amount": "1.76", "rate": "5.5"},
    )
    # A full credit note takes what is left, the refund shown taken off.
    rest = credit(db_session, invoice, storage, cancels_invoice=True)
    assert rest.total_gross == Decimal("8.20")
    assert rest.lines[-1].kind == "amount" and rest.lines[-1].total_gross < 0
    total, _ = credited(db_session, invoice)
    assert total == invoice.total_gross


def test_credit_notes_have_their_own_gapless_series(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    first = issue(db_session, relay_order(db_session), storage)
    second = issue(db_session, relay_order(db_session), storage)
    notes = [credit(db_session, first, storage, amount=Decimal("1.00"))]
    # A refused credit note takes no number.
    with pytest.raises(ValidationFailed):
        credit(db_session, second, storage, amount=Decimal("1000.00"))
    notes.append(credit(db_session, second, storage, amount=Decimal("1.00")))
    notes.append(credit(db_session, first, storage))
    third = issue(db_session, relay_order(db_session), storage)
    year = first.issue_date.year  # type: ignore[union-attr]
    assert [note.reference for note in notes] == [f"AV-{year}-{n:06d}" for n in (1, 2, 3)]
    assert [doc.reference for doc in (first, second, third)] == [
        f"FA-{year}-{n:06d}" for n in (1, 2, 3)
    ]


def test_cancelling_an_invoice_frees_its_quantities_for_a_corrected_one(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    invoice = issue(db_session, order, storage)
    with pytest.raises(InvalidTransition, match="nothing is left"):
        issue(db_session, order, storage)
    with pytest.raises(ValidationFailed, match="cannot be issued"):
        credit(db_session, invoice, storage, cancels_invoice=True, amount=Decimal("1.00"))
    cancel = credit(db_session, invoice, storage, cancels_invoice=True, reason="Mauvaise adresse")
    assert cancel.cancels_invoice and cancel.total_gross == invoice.total_gross
    corrected = issue(db_session, order, storage)
    assert corrected.total_gross == order.grand_total
    assert corrected.snapshot["shop_check"]["difference"] == "0.00"
    with pytest.raises(InvalidTransition, match="nothing is left"):
        credit(db_session, invoice, storage, cancels_invoice=True)


def test_a_refunded_line_is_not_invoiced_again_after_a_cancellation(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    invoice = issue(db_session, order, storage)
    mug = next(row for row in invoice.lines if row.sku == "MUG-BLEU")
    credit(db_session, invoice, storage, lines={mug.id: Decimal(1)})
    credit(db_session, invoice, storage, cancels_invoice=True)
    corrected = issue(db_session, order, storage)
    mugs = next(row for row in corrected.lines if row.sku == "MUG-BLEU")
    assert mugs.quantity == 2
    assert corrected.total_gross == order.grand_total - mug.total_gross / 3


def test_only_an_issued_invoice_can_be_credited(db_session: Session, storage: LocalStorage) -> None:
    from tests.documents.conftest import ship

    complete_company(db_session)
    order = relay_order(db_session)
    invoice = issue(db_session, order, storage)
    note = credit(db_session, invoice, storage, amount=Decimal("5.00"))
    with pytest.raises(InvalidTransition, match="only an issued invoice"):
        credit(db_session, note, storage)
    shipment = ship(db_session, order, {"MUG-BLEU": 3})
    delivery = delivery_notes.issue_delivery_note(db_session, shipment, ACTOR, storage=storage)
    with pytest.raises(InvalidTransition, match="only an issued invoice"):
        credit(db_session, delivery, storage)


def test_a_reason_is_required_and_the_company_complete(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    invoice = issue(db_session, relay_order(db_session), storage)
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(ValidationFailed) as refused:
            credit(db_session, invoice, storage, reason=reason)
        assert set(refused.value.errors) == {"reason"}
    with pytest.raises(ValidationFailed):
        credit(db_session, invoice, storage, amount=Decimal(1), lines={1: Decimal(1)})
    complete_company(db_session, siret="")
    with pytest.raises(CompanyIncomplete) as incomplete:
        credit(db_session, invoice, storage)
    assert incomplete.value.fields == ["siret"]
    assert credit_notes.credit_notes_of(db_session, invoice) == []


def test_the_same_idempotency_key_answers_the_same_credit_note(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    first_invoice = issue(db_session, relay_order(db_session), storage)
    other_invoice = issue(db_session, relay_order(db_session), storage)
    note = credit(db_session, first_invoice, storage, amount=Decimal(5), idempotency_key="k-1")
    again = credit(db_session, first_invoice, storage, amount=Decimal(5), idempotency_key="k-1")
    assert again.id == note.id
    assert len(credit_notes.credit_notes_of(db_session, first_invoice)) == 1
    with pytest.raises(InvalidTransition, match="another document"):
        credit(db_session, other_invoice, storage, idempotency_key="k-1")


# --- Properties: never more than the invoice --------------------------------------------

RATES = (Decimal("20.00"), Decimal("10.00"), Decimal("5.50"), Decimal("2.10"))


@st.composite
def invoice_lines(draw: st.DrawFn) -> list[DocumentLine]:
    """1–5 product lines at French rates, some followed by their discount line."""
    rows: list[DocumentLine] = []
    for index in range(draw(st.integers(1, 5))):
        rate = draw(st.sampled_from(RATES))
        quantity = Decimal(draw(st.integers(1, 12)))
        unit = Decimal(draw(st.integers(1, 40_000))) / 100
        net = money(unit * quantity)
        lines = [
            Line("product", f"P{index}", quantity, unit, rate, net, money(net * rate / 100), index)
        ]
        off = min(
            money(net * Decimal(draw(st.integers(0, 50))) / 100), net - money(Decimal(1) / 100)
        )
        if off > 0:  # a discount smaller than its product
            lines.append(
                Line(
                    "discount",
                    f"P{index}",
                    quantity,
                    Decimal(0),
                    rate,
                    -off,
                    -money(off * rate / 100),
                    index,
                )
            )
        for line in lines:
            row = line.row(len(rows) + 1)
            row.id = len(rows) + 1
            rows.append(row)
    return rows


def _note(lines: list[Line]) -> Document:
    note = Document(kind=DocumentKind.CREDIT_NOTE, reference=f"AV-{id(lines)}")
    note.lines = [line.row(position) for position, line in enumerate(lines, start=1)]
    return note


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=invoice_lines(), data=st.data())
def test_credits_never_exceed_the_invoice_and_amounts_split_exactly(
    rows: list[DocumentLine], data: st.DataObject
) -> None:
    invoice = Document(kind=DocumentKind.INVOICE, state=DocumentState.ISSUED, lines=rows)
    notes: list[Document] = []
    for _ in range(data.draw(st.integers(1, 6))):
        left = credit_notes.remaining(invoice, notes)
        if left.gross <= 0:
            break
        if data.draw(st.booleans()):
            cents = data.draw(st.integers(1, int(left.gross * 100) + 300))
            amount = Decimal(cents) / 100
            try:
                lines = credit_notes.lines_by_amount(left, amount, "Remboursement")
            except CreditRefused:
                assert amount > left.gross
                continue
            # The VAT split adds up to the amount; each part's net + VAT is its gross.
            assert sum(line.total_gross for line in lines) == amount
            assert all(line.total_net + line.tax_amount == line.total_gross for line in lines)
        else:
            products = [e for e in left.lines if e.line.kind == "product" and e.quantity > 0]
            if not products:
                continue
            chosen = data.draw(st.lists(st.sampled_from(products), min_size=1, unique_by=id))
            asked = {
                e.line.id: Decimal(data.draw(st.integers(1, int(e.quantity) + 1))) for e in chosen
            }
            try:
                lines = credit_notes.lines_by_quantity(left, asked)
            except CreditRefused as refused:
                within = all(asked[e.line.id] <= e.quantity for e in chosen)
                if within and not left.by_amount:
                    # What is left is always creditable, unless its part rounds to 0.00.
                    assert refused.errors == {"total": "nothing to credit"}
                continue
            over = [e for e in chosen if asked[e.line.id] > e.quantity]
            assert not over, "a quantity above what is left was credited"
        notes.append(_note(lines))
        _assert_within(invoice, notes)
    # What is left, credited in full, makes the credits equal the invoice exactly.
    left = credit_notes.remaining(invoice, notes)
    full = left.gross > 0
    if full:
        notes.append(_note(credit_notes.full_lines(left)))
    # Per line too, unless refunds by amount alone took it all.
    by_amount = any(row.kind == "amount" for doc in notes for row in doc.lines)
    for document in (invoice, *notes):
        hypothesis.note(
            repr(
                [
                    (r.kind, r.quantity, r.total_net, r.tax_amount, r.tax_rate)
                    for r in document.lines
                ]
            )
        )
    _assert_within(invoice, notes, exactly=True, per_line=full or not by_amount)


def _assert_within(
    invoice: Document, notes: list[Document], exactly: bool = False, per_line: bool = True
) -> None:
    by_line: dict[tuple[str, int | None], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    per_rate: dict[Decimal, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
    for credit_note in notes:
        for row in credit_note.lines:
            if row.kind != "amount":
                figures = by_line[(row.kind, row.order_line_id)]
                figures[0] += row.quantity
                figures[1] += row.total_net
                figures[2] += row.tax_amount
            per_rate[row.tax_rate][0] += row.total_net
            per_rate[row.tax_rate][1] += row.tax_amount
    invoiced_rate: dict[Decimal, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
    for row in invoice.lines:
        quantity, net, tax = by_line[(row.kind, row.order_line_id)]
        invoiced_rate[row.tax_rate][0] += row.total_net
        invoiced_rate[row.tax_rate][1] += row.tax_amount
        assert quantity <= row.quantity
        assert abs(net) <= abs(row.total_net) and abs(tax) <= abs(row.tax_amount)
        if exactly and per_line:
            assert (net, tax) == (row.total_net, row.tax_amount)
            # A discount's quantity only echoes its product's (a 0.00 part is left out).
            assert quantity == row.quantity or row.kind == "discount"
    for rate, (net, tax) in per_rate.items():
        assert net <= invoiced_rate[rate][0] and tax <= invoiced_rate[rate][1]
        if exactly:
            assert (net, tax) == tuple(invoiced_rate[rate])
    total = sum((net + tax for net, tax in per_rate.values()), Decimal(0))
    invoiced = sum((row.total_gross for row in invoice.lines), Decimal(0))
    assert total <= invoiced
    if exactly:
        assert total == invoiced


# --- Proposals ---------------------------------------------------------------------------


def test_a_refund_by_hand_on_an_invoiced_order_proposes_a_credit_by_amount(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    assert credit_notes.proposals(db_session, order) == []
    payments.record_manual(db_session, order, ACTOR, kind="payment", source="cash", amount="49.00")
    invoice = issue(db_session, order, storage)
    assert credit_notes.proposals(db_session, order) == []
    payments.record_manual(db_session, order, ACTOR, kind="refund", source="cash", amount="12.50")
    [proposal] = credit_notes.proposals(db_session, order)
    assert (proposal.kind, proposal.invoice.id, proposal.amount) == (
        "amount",
        invoice.id,
        Decimal("12.50"),
    )
    events = db_session.scalars(
        select(OrderEvent).where(OrderEvent.kind == "credit_note.proposed")
    ).all()
    assert [event.details["amount"] for event in events] == ["12.50"]
    # A person confirms it: nothing was issued until then, and then nothing is proposed.
    assert credit_notes.credit_notes_of(db_session, invoice) == []
    credit(db_session, invoice, storage, amount=proposal.amount)
    assert credit_notes.proposals(db_session, order) == []


def test_a_cancelled_invoiced_order_proposes_cancelling_the_invoice(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    invoice = issue(db_session, order, storage)
    order_state.cancel(db_session, order, ACTOR, "Client a changé d'avis")
    assert order.commercial_state == CommercialState.CANCELLED
    [proposal] = credit_notes.proposals(db_session, order)
    assert (proposal.kind, proposal.invoice.id, proposal.amount) == (
        "cancel",
        invoice.id,
        Decimal("49.00"),
    )
    event = db_session.scalars(
        select(OrderEvent).where(OrderEvent.kind == "credit_note.proposed")
    ).one()
    assert event.details["cancel"] is True and event.details["invoices"] == invoice.reference
    credit(db_session, invoice, storage, cancels_invoice=True)
    assert credit_notes.proposals(db_session, order) == []


def test_an_order_without_invoices_proposes_nothing(db_session: Session) -> None:
    order = relay_order(db_session)
    payments.record_manual(db_session, order, ACTOR, kind="payment", source="cash", amount="49.00")
    payments.record_manual(db_session, order, ACTOR, kind="refund", source="cash", amount="10.00")
    assert credit_notes.proposals(db_session, order) == []
    assert (
        db_session.scalars(
            select(OrderEvent).where(OrderEvent.kind == "credit_note.proposed")
        ).all()
        == []
    )


# --- The order page ----------------------------------------------------------------------


def client_as(app: Flask, make_user: Callable[..., User], role: Role) -> FlaskClient:
    client = app.test_client()
    log_in(client, make_user(role).email)
    return client


def invoiced_order(session: Session, storage: LocalStorage):  # type: ignore[no-untyped-def]
    complete_company(session)
    order = relay_order(session)
    invoice = issue(session, order, storage)
    session.commit()
    return order, invoice


@pytest.fixture()
def app_storage(app: Flask) -> LocalStorage:
    """Where the app stores documents (its configured storage)."""
    with app.app_context():
        from web.documents.storage import configured

        found = configured()
    assert isinstance(found, LocalStorage)
    return found


def test_a_manager_credits_lines_from_the_order_page(
    app: Flask, db_session: Session, make_user: Callable[..., User], app_storage: LocalStorage
) -> None:
    order, invoice = invoiced_order(db_session, app_storage)
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    action = f"/documents/{invoice.id}/credit-notes"
    assert f'action="{action}"' in page and "Annuler cette facture" in page
    mug = next(row for row in invoice.lines if row.sku == "MUG-BLEU")
    response = manager.post(
        action,
        data={
            "csrf_token": csrf_from(page),
            "key": "ui:test-1",
            "way": "lines",
            f"quantity-{mug.id}": "1",
            "reason": "Mug cassé",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/orders/{order.id}#documents-title")
    [note] = credit_notes.credit_notes_of(db_session, invoice)
    assert note.total_gross == Decimal("12.00") and note.reason == "Mug cassé"
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert note.reference in page  # listed, and the flash and the timeline say it
    assert "Restant à créditer : 37,00" in page


def test_the_form_errors_come_back_in_the_panel_in_french(
    app: Flask, db_session: Session, make_user: Callable[..., User], app_storage: LocalStorage
) -> None:
    order, invoice = invoiced_order(db_session, app_storage)
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    token = csrf_from(page)
    action = f"/documents/{invoice.id}/credit-notes"
    mug = next(row for row in invoice.lines if row.sku == "MUG-BLEU")
    partial = {"HX-Request": "true", "HX-Target": "credit-notes"}
    cases = [
        ({"way": "lines", f"quantity-{mug.id}": "4", "reason": "x"}, "il reste 3 à créditer"),
        ({"way": "lines", "reason": "x"}, "Indiquez une quantité à créditer"),
        ({"way": "amount", "amount": "dix", "reason": "x"}, "Saisissez un montant"),
        ({"way": "amount", "amount": "50", "reason": "x"}, "il reste 49,00 à créditer"),
        ({"way": "all", "reason": " "}, "Dites pourquoi la facture est créditée."),
    ]
    for data, message in cases:
        response = manager.post(action, data={"csrf_token": token, **data}, headers=partial)
        body = response.get_data(as_text=True)
        assert response.status_code == 422, data
        assert "<html" not in body and 'id="credit-notes"' in body
        assert message in body, (data, body[:2000])
    # Without htmx: the whole order page, the typed values kept.
    response = manager.post(
        action, data={"csrf_token": token, "way": "amount", "amount": "50", "reason": "Geste"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in body and 'value="50"' in body
    assert credit_notes.credit_notes_of(db_session, invoice) == []
    # A line that is not the invoice's is no form this page made.
    forged = manager.post(action, data={"csrf_token": token, "quantity-999999": "1", "reason": "x"})
    assert forged.status_code == 400


@pytest.mark.parametrize("role", [Role.VIEWER, Role.WAREHOUSE])
def test_viewers_and_the_warehouse_cannot_credit(
    app: Flask,
    db_session: Session,
    make_user: Callable[..., User],
    app_storage: LocalStorage,
    role: Role,
) -> None:
    order, invoice = invoiced_order(db_session, app_storage)
    client = client_as(app, make_user, role)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "/credit-notes" not in page
    manager_page = client_as(app, make_user, Role.MANAGER).get(f"/orders/{order.id}")
    token = csrf_from(client.get("/account").get_data(as_text=True))
    for path in (f"/documents/{invoice.id}/credit-notes/new",):
        assert client.get(path).status_code == 403
    refused = client.post(
        f"/documents/{invoice.id}/credit-notes",
        data={"csrf_token": token, "cancel": "on", "reason": "x"},
    )
    assert refused.status_code == 403
    assert manager_page.status_code == 200
    assert credit_notes.credit_notes_of(db_session, invoice) == []


def test_a_proposal_prefills_the_form_and_the_cancellation_is_one_click(
    app: Flask, db_session: Session, make_user: Callable[..., User], app_storage: LocalStorage
) -> None:
    order, invoice = invoiced_order(db_session, app_storage)
    order_state.cancel(db_session, order, ACTOR, "Client parti")
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    prefill = f"/documents/{invoice.id}/credit-notes/new?proposal=cancel"
    assert prefill in page and "La commande a été annulée mais pas cette facture." in page
    # The timeline says so, under the documents' filter.
    assert (
        f"Avoir proposé : la commande a été annulée ; annulez la facture {invoice.reference}"
        in page
    )
    assert 'value="document"' in page and 'value="credit_note"' not in page
    form = manager.get(prefill, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in form and "Commande annulée</textarea>" in form
    response = manager.post(
        f"/documents/{invoice.id}/credit-notes",
        data={"csrf_token": csrf_from(page), "cancel": "on", "reason": "Commande annulée"},
    )
    assert response.status_code == 303
    [note] = credit_notes.credit_notes_of(db_session, invoice)
    assert note.cancels_invoice and note.total_gross == invoice.total_gross
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert prefill not in page and f"/documents/{invoice.id}/credit-notes" not in page
    # A credit note is no invoice: nothing to credit there.
    assert manager.get(f"/documents/{note.id}/credit-notes/new").status_code == 404


# --- A refund from the shop ----------------------------------------------------------------


@pytest.fixture()
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def test_a_refund_from_the_shop_proposes_a_credit_note_and_issues_none(
    client: FlaskClient,
    woo: WooCommerceEmulator,
    db_session: Session,
    session_factory: sessionmaker[Session],
    storage: LocalStorage,
) -> None:
    shop = shops.create_shop(
        db_session,
        "woocommerce",
        "Thés & Fonte",
        woo.base_url,
        api_key=woo.consumer_key,  # type: ignore[attr-defined]
        api_secret=woo.consumer_secret,  # type: ignore[attr-defined]
        webhook_secret=woo.webhook_secret,  # type: ignore[attr-defined]
    )
    complete_company(db_session)
    db_session.commit()
    path = (
        Path(__file__).resolve().parents[1]
        / "fixtures/woocommerce/fr-order-relay-coupon-refund.json"
    )
    payload = json.loads(path.read_text())
    payload = payload.get("order", payload)
    refunds = payload.pop("refunds")  # paid, not refunded yet
    payload["refunds"] = []
    order_id = woo.add_order(payload)  # type: ignore[attr-defined]
    hook = f"/hooks/woocommerce/{shop.key}"
    body, headers = woo.webhook("order.created", order_id)  # type: ignore[attr-defined]
    assert client.post(hook, data=body, headers=headers).status_code == 200
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order).where(Order.shop_id == shop.id)).one()
    invoice = issue(db_session, order, storage)
    db_session.commit()
    assert credit_notes.proposals(db_session, order) == []

    woo.update_order(order_id, refunds=refunds)  # type: ignore[attr-defined]
    body, headers = woo.webhook("order.updated", order_id)  # type: ignore[attr-defined]
    assert client.post(hook, data=body, headers=headers).status_code == 200
    run_sync(session_factory, shop.key)

    db_session.expire_all()
    [proposal] = credit_notes.proposals(db_session, order)
    assert (proposal.kind, proposal.invoice.id, proposal.amount) == (
        "amount",
        invoice.id,
        Decimal("5.00"),
    )
    event = db_session.scalars(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "credit_note.proposed"
        )
    ).one()
    assert event.details["amount"] == "5.00" and event.details["invoices"] == invoice.reference
    assert credit_notes.credit_notes_of(db_session, invoice) == []  # a person confirms
    # The same delivery again proposes nothing new.
    assert client.post(hook, data=body, headers=headers).status_code == 200
    run_sync(session_factory, shop.key)
    kinds = db_session.scalars(select(OrderEvent.kind).where(OrderEvent.order_id == order.id)).all()
    assert kinds.count("credit_note.proposed") == 1


def waiting_on_a_lock(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(session.scalar(query))


def test_two_people_crediting_the_same_invoice_at_once_credit_it_once(
    two_processes: list[sessionmaker[Session]], storage: LocalStorage
) -> None:
    first, second = two_processes
    with first.begin() as session:
        complete_company(session)
        invoice_id = issue(session, relay_order(session), storage).id
    outcome: list[object] = []

    def other_person() -> None:
        with second() as session:
            invoice = session.get_one(Document, invoice_id)
            try:
                note = credit(session, invoice, storage, amount=Decimal("49.00"))
                session.commit()
                outcome.append(note.reference)
            except InvalidTransition as exc:
                session.rollback()
                outcome.append(exc.reason)

    with first() as session:
        invoice = session.get_one(Document, invoice_id)
        credit(session, invoice, storage, amount=Decimal("49.00"))
        # The other person starts while this credit note is not committed: they wait.
        thread = threading.Thread(target=other_person)
        thread.start()
        wait_until(lambda: waiting_on_a_lock(first), what="the other person waiting")
        session.commit()
    thread.join()
    assert outcome == ["nothing is left to credit"]
    with first() as session:
        invoice = session.get_one(Document, invoice_id)
        assert [n.total_gross for n in credit_notes.credit_notes_of(session, invoice)] == [
            Decimal("49.00")
        ]
