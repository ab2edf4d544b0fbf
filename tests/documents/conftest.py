"""Shipped orders to print delivery notes of, and a storage folder per test."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_line, make_order, make_shop
from web.documents.storage import LocalStorage
from web.models import (
    CompanySettings,
    Order,
    Parcel,
    Shipment,
    ShipmentLine,
    ShippingMode,
    Shop,
)
from web.models.enums import ShipmentState, VatRegime


def pdf_text(data: bytes) -> str:
    """Every page's text, as a reader would copy it."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture()
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "instance" / "documents")


def relay_order(session: Session) -> Order:
    """An order of three lines to a Mondial Relay point, placed on 2 March 2026."""
    shop = session.scalars(select(Shop).where(Shop.key == "boutique")).first()
    mode = session.scalars(select(ShippingMode).where(ShippingMode.code == "relay-test")).first()
    if shop is None or mode is None:
        shop = make_shop(session, "boutique", name="La Boutique du Thé")
        mode = ShippingMode(
            code="relay-test",
            name="Mondial Relay Point Relais",
            carrier="Mondial Relay",
            is_relay_point=True,
        )
        session.add(mode)
    customer = make_customer(session, None, "Marie", "Curie")
    lines = [
        make_line("MUG-BLEU", 3, "12.00", name="Mug bleu"),
        make_line("THE-VERT", 2, "5.50", name="Thé vert Sencha"),
        make_line("CARTE", 1, "2.00", name="Carte cadeau", needs_shipping=False),
    ]
    return make_order(
        session,
        shop,
        lines,
        customer=customer,
        shipping_mode=mode,
        billing_address={
            "first_name": "Marie",
            "last_name": "Curie",
            "line1": "11 rue Pierre et Marie Curie",
            "postcode": "75005",
            "city": "Paris",
            "country_code": "FR",
        },
        shipping_address={
            "first_name": "Marie",
            "last_name": "Curie",
            "company": "Tabac de la Gare",
            "line1": "2 place de la Gare",
            "postcode": "69002",
            "city": "Lyon",
            "country_code": "FR",
            "relay_point_id": "FR-004242",
        },
    )


def ship(
    session: Session,
    order: Order,
    quantities: dict[str, int],
    tracking: tuple[str, ...] = (),
    state: ShipmentState = ShipmentState.SHIPPED,
) -> Shipment:
    """A shipment of the order's lines by SKU, with one parcel per tracking number."""
    by_sku = {line.sku: line for line in order.lines}
    shipment = Shipment(
        order=order,
        number=f"EXP-{order.id}-{len(order.shipments) + 1}",
        state=state,
        shipping_mode=order.shipping_mode,
        lines=[ShipmentLine(order_line=by_sku[sku], quantity=q) for sku, q in quantities.items()],
        parcels=[Parcel(tracking_number=n, weight_kg=Decimal("1.25")) for n in tracking],
    )
    session.add(shipment)
    session.flush()
    session.refresh(order)
    return shipment


def complete_company(session: Session, **overrides: object) -> CompanySettings:
    """A company whose settings allow issuing invoices (a French SAS, normal VAT regime)."""
    values: dict[str, object] = {
        "legal_name": "Comptoir du Thé SAS",
        "trade_name": "La Boutique du Thé",
        "address": "12 rue des Lilas",
        "postcode": "69003",
        "city": "Lyon",
        "country": "FR",
        "email": "compta@boutique-the.example",
        "siren": "732829320",
        "siret": "73282932000074",
        "rcs_city": "Lyon",
        "legal_form": "SAS",
        "share_capital": Decimal("10000.00"),
        "vat_number": "FR44732829320",
        "vat_regime": VatRegime.NORMAL,
        "iban": "FR1420041010050500013M02606",
        "bic": "PSSTFRPPLIL",
        "payment_terms": "Paiement à réception de facture",
        "payment_days": 0,
        "early_payment": "Pas d'escompte pour paiement anticipé",
        "late_penalty": "Pénalités de retard : taux BCE + 10 points",
        "recovery_indemnity": "Indemnité forfaitaire pour frais de recouvrement : 40 €",
    }
    values.update(overrides)
    company = session.get(CompanySettings, 1)
    if company is None:
        company = CompanySettings(id=1)
        session.add(company)
    for key, value in values.items():
        setattr(company, key, value)
    session.flush()
    return company
