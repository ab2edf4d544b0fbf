"""The order desk as a person sees it: the list with its filters, and one order's page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import BASE_TIME, make_customer, make_line, make_order, make_shop
from web.models import (
    Comment,
    OrderEvent,
    Parcel,
    Shipment,
    Transaction,
    User,
)
from web.models.enums import (
    ActorType,
    CommentVisibility,
    CommercialState,
    FulfilmentState,
    PaymentState,
    ShipmentState,
    TransactionKind,
)
from web.models.orders import Order

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


def numbers(html: str) -> list[str]:
    """The order numbers listed in the results, in the order shown."""
    return re.findall(r'class="cell-number"><a href="/orders/\d+">([^<]+)</a>', html)


def page(client: FlaskClient, path: str, headers: dict[str, str] | None = None) -> str:
    response = client.get(path, headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


@dataclass
class Desk:
    client: FlaskClient
    orders: dict[str, Order]

    def ids(self, *names: str) -> list[str]:
        return [str(self.orders[name].id) for name in names]


def shown_ids(html: str) -> list[str]:
    """The ids of the orders listed, in the order shown (numbers repeat across shops)."""
    return re.findall(r'class="cell-number"><a href="/orders/(\d+)"', html)


@pytest.fixture()
def desk(db_session: Session, client: FlaskClient, login_as: Callable[..., User]) -> Desk:
    """Five orders of two shops in different states, and a logged-in viewer."""
    lyon = make_shop(db_session, key="lyon", name="Boutique Lyon")
    paris = make_shop(db_session, key="paris", name="Atelier Paris", platform="woocommerce")
    elodie = make_customer(db_session, "elodie@example.test", "Élodie", "Martin")
    paul = make_customer(db_session, "paul@example.test", "Paul", "Bernard")
    orders = {
        "paid": make_order(
            db_session,
            lyon,
            [make_line("MUG-BLUE", 2, "12.50")],
            customer=elodie,
            commercial_state=CommercialState.VALIDATED,
            payment_state=PaymentState.PAID,
            placed_at=BASE_TIME,
        ),
        "unpaid": make_order(
            db_session,
            lyon,
            [make_line("TEE-RED", 1, "30.00")],
            customer=paul,
            placed_at=BASE_TIME + dt.timedelta(days=2),
        ),
        "held": make_order(
            db_session,
            paris,
            [make_line("CAP-01", 1, "8.00")],
            customer=paul,
            commercial_state=CommercialState.VALIDATED,
            payment_state=PaymentState.PAID,
            on_hold=True,
            hold_reason="Adresse à vérifier",
            placed_at=BASE_TIME + dt.timedelta(days=5),
        ),
        "unmapped": make_order(
            db_session,
            paris,
            [make_line("BAG-9", 1, "55.00")],
            customer=elodie,
            commercial_state=CommercialState.CANCELLED,
            fulfilment_state=FulfilmentState.UNFULFILLED,
            needs_mapping=True,
            mapping_issues=[{"kind": "carrier", "value": "Drone", "label": ""}],
            placed_at=BASE_TIME + dt.timedelta(days=9),
        ),
    }
    orders["shipped"] = make_order(
        db_session,
        lyon,
        [make_line("MUG-GREEN", 1, "12.50")],
        customer=elodie,
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        fulfilment_state=FulfilmentState.SHIPPED,
        placed_at=BASE_TIME + dt.timedelta(days=1),
    )
    db_session.commit()
    login_as("viewer")
    return Desk(client, orders)


# --- The list -------------------------------------------------------------------------------


def test_list_shows_orders_newest_first_in_french(desk: Desk) -> None:
    html = page(desk.client, "/orders/")
    assert "<h1>Commandes</h1>" in html
    assert "5 commandes" in html
    assert shown_ids(html) == desk.ids("unmapped", "held", "unpaid", "shipped", "paid")
    assert "Boutique Lyon" in html and "Atelier Paris" in html
    assert "Élodie Martin" in html and "elodie@example.test" in html
    assert "25,00\xa0€" in html
    assert 'class="badge ok"><span class="visually-hidden">Paiement : </span>Payée' in html
    assert (
        'class="badge bad"><span class="visually-hidden">État de la commande : </span>Annulée'
        in html
    )
    assert "Non payée" in html
    assert "En attente" in html and "Correspondance manquante" in html
    paid = desk.orders["paid"]
    assert (
        f'value="{paid.id}" form="bulk-form" aria-label="Sélectionner la commande {paid.number}"'
        in html
    )
    assert '<details class="filter-panel card" id="filter-panel"' in html
    assert "<summary>Filtres</summary>" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("shop=paris", {"held", "unmapped"}),
        ("commercial=cancelled", {"unmapped"}),
        ("fulfilment=shipped", {"shipped"}),
        ("payment=unpaid", {"unpaid", "unmapped"}),
        ("on_hold=1", {"held"}),
        ("needs_mapping=1", {"unmapped"}),
        ("ready=1", {"paid"}),
        ("date_from=2026-03-03&date_to=2026-03-08", {"shipped", "unpaid", "held"}),
        ("q=%231003", {"shipped"}),
        ("q=%231002", {"unpaid", "unmapped"}),
        ("q=elodie", {"paid", "unmapped", "shipped"}),
        ("q=bernard", {"unpaid", "held"}),
        ("q=mug-", {"paid", "shipped"}),
        ("q=paul%40example.test", {"unpaid", "held"}),
    ],
)
def test_each_filter_and_search_narrows_the_list(
    desk: Desk, query: str, expected: set[str]
) -> None:
    html = page(desk.client, f"/orders/?{query}")
    assert set(shown_ids(html)) == set(desk.ids(*expected))


def test_filters_combine(desk: Desk) -> None:
    html = page(desk.client, "/orders/?shop=lyon&payment=paid")
    assert set(shown_ids(html)) == set(desk.ids("paid", "shipped"))
    assert "2 commandes" in html


def test_no_match_shows_an_empty_state(desk: Desk) -> None:
    html = page(desk.client, "/orders/?q=nobody-at-all")
    assert "0 commande" in html
    assert "Aucune commande ne correspond à ces filtres." in html
    assert "<table" not in html


def test_sorting_by_total_both_ways(desk: Desk) -> None:
    ascending = page(desk.client, "/orders/?sort=total")
    # totals: held 8.00, paid 25.00, shipped 12.50, unpaid 30.00, unmapped 55.00
    assert shown_ids(ascending) == desk.ids("held", "shipped", "paid", "unpaid", "unmapped")
    assert 'aria-sort="ascending"><a class="sort active" href="/orders/?sort=-total"' in ascending
    descending = page(desk.client, "/orders/?sort=-total")
    assert shown_ids(descending) == shown_ids(ascending)[::-1]
    assert 'aria-sort="descending"' in descending
    assert '<option value="-total" selected>' in descending


def test_sorting_by_customer_name(desk: Desk) -> None:
    html = page(desk.client, "/orders/?sort=customer")
    names = re.findall(r'data-label="Client"><div>([^<]+)<', html)
    assert names == ["Paul Bernard"] * 2 + ["Élodie Martin"] * 3


def test_sort_links_keep_the_filters(desk: Desk) -> None:
    html = page(desk.client, "/orders/?shop=lyon&q=mug")
    assert 'href="/orders/?shop=lyon&amp;q=mug&amp;sort=-number"' in html


def hourly_orders(session: Session, count: int) -> None:
    """`count` orders an hour apart, numbered #1001 onwards (the newest last)."""
    shop = make_shop(session)
    for index in range(count):
        make_order(session, shop, placed_at=BASE_TIME + dt.timedelta(hours=index))
    session.commit()


def test_pagination(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    hourly_orders(db_session, 30)
    login_as("manager")
    first = page(client, "/orders/")
    assert "30 commandes" in first and "Page 1 sur 2" in first
    assert len(numbers(first)) == 25
    assert numbers(first)[0] == "#1030"
    assert 'rel="next" href="/orders/?page=2"' in first
    second = page(client, "/orders/?page=2")
    assert "Page 2 sur 2" in second
    assert numbers(second) == ["#1005", "#1004", "#1003", "#1002", "#1001"]
    assert 'rel="prev" href="/orders/?page=1"' in second
    filtered = page(client, "/orders/?page=2&sort=placed_at&q=%23100")
    assert "9 commandes" in filtered and "Page 1 sur 1" in filtered


def test_deep_pages_are_linked_by_cursor(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    hourly_orders(db_session, 8)
    login_as("manager")
    fifth = page(client, "/orders/?per_page=1&page=5")
    assert 'rel="prev" href="/orders/?per_page=1&amp;page=4"' in fifth
    after = re.search(r'rel="next" href="/orders/\?per_page=1&amp;after=([\w-]+)"', fifth)
    assert after is not None
    sixth = page(client, f"/orders/?per_page=1&after={after[1]}")
    assert numbers(sixth) == ["#1003"] and "Page 6 sur 8" in sixth
    assert 'rel="prev" href="/orders/?per_page=1&amp;page=5"' in sixth
    after = re.search(r'rel="next" href="/orders/\?per_page=1&amp;after=([\w-]+)"', sixth)
    assert after is not None
    seventh = page(client, f"/orders/?per_page=1&after={after[1]}")
    before = re.search(r'rel="prev" href="/orders/\?per_page=1&amp;before=([\w-]+)"', seventh)
    assert before is not None
    assert numbers(page(client, f"/orders/?per_page=1&before={before[1]}")) == ["#1003"]
    # A tampered cursor: the first page, and the value said to be ignored.
    tampered = page(client, "/orders/?per_page=1&after=W10")
    assert numbers(tampered) == ["#1008"] and "Page 1 sur 8" in tampered
    assert "Page : « W10 » n’est pas une valeur valide" in tampered


def test_partial_request_gets_only_the_results(desk: Desk) -> None:
    response = desk.client.get("/orders/?payment=paid", headers=PARTIAL)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and 'class="topbar"' not in html and "<form" not in html
    assert html.lstrip().startswith('<div id="results"')
    assert "3 commandes" in html
    assert "HX-Request, HX-Boosted" in response.headers["Vary"]


def test_boosted_request_and_pushed_url_get_the_full_page(desk: Desk) -> None:
    client = desk.client
    for headers in (BOOSTED, {}):
        response = client.get("/orders/?payment=paid&shop=lyon&ready=1&q=mug", headers=headers)
        html = response.get_data(as_text=True)
        assert "<html" in html
        assert "HX-Request, HX-Boosted" in response.headers["Vary"]
        assert '<option value="paid" selected>Payée</option>' in html
        assert '<option value="lyon" selected>Boutique Lyon</option>' in html
        assert 'name="ready" value="1" checked' in html
        assert 'name="q" value="mug"' in html
        assert "1 commande" in html


def test_filter_form_works_with_and_without_htmx(desk: Desk) -> None:
    html = page(desk.client, "/orders/")
    form = re.search(r'<form id="order-filters"[^>]*>', html, re.S)
    assert form is not None
    tag = form.group(0)
    for attribute in (
        'method="get"',
        'action="/orders/"',
        'hx-get="/orders/"',
        'hx-target="#results"',
        'hx-push-url="true"',
        "input changed delay:300ms from:#order-search",
        'hx-indicator="#orders-indicator"',
    ):
        assert attribute in tag


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("payment=bogus", "État du paiement : « bogus » n’est pas une valeur valide"),
        ("date_from=yesterday", "Du : « yesterday » n’est pas une valeur valide"),
        ("date_from=2026-03-10&date_to=2026-03-01", "La date de fin précède la date de début"),
        ("date_from=0001-01-01", "Du : « 0001-01-01 » n’est pas une valeur valide"),
        ("date_to=9999-12-31", "« 9999-12-31 » n’est pas une valeur valide"),
        ("sort=price", "Trier par : « price »"),
        ("page=two", "Page : « two »"),
        ("on_hold=maybe", "En attente : « maybe »"),
    ],
)
def test_bad_filter_values_show_an_inline_message(desk: Desk, query: str, message: str) -> None:
    client = desk.client
    for headers in ({}, PARTIAL):
        response = client.get(f"/orders/?{query}", headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Certains filtres ont été ignorés" in html
        assert message in html
        assert 'class="cell-number"' in html  # the other filters still apply


def test_viewer_and_admin_read_the_list_warehouse_does_not(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as("warehouse")
    response = client.get("/orders/")
    assert response.status_code == 403
    assert "Accès refusé" in response.get_data(as_text=True)


def test_list_in_english_after_switching_language(desk: Desk) -> None:
    client = desk.client
    token = csrf_token(client, "/orders/")
    response = client.post(
        "/language", data={"lang": "en", "next": "/orders/", "csrf_token": token}
    )
    assert response.status_code == 303
    html = page(client, "/orders/")
    assert "<h1>Orders</h1>" in html
    assert "5 orders" in html
    assert ">Paid</span>" in html and "Needs mapping" in html
    assert f'aria-label="Select order {desk.orders["paid"].number}"' in html
    assert "Page 1 of 1" in html


# --- The detail page -----------------------------------------------------------------------


@pytest.fixture()
def full_order(db_session: Session, make_user: Callable[..., User]) -> Order:
    """An order with a bundle, discounts, addresses, payments, a parcel, comments, events."""
    shop = make_shop(db_session, key="lyon", name="Boutique Lyon")
    customer = make_customer(db_session, "claire@example.test", "Claire", "Petit")
    bundle = make_line("BOX-GIFT", 1, "40.00", name="Coffret cadeau", ean="3760000000017")
    child = make_line("MUG-BLUE", 2, "0.00", name="Mug bleu", options="Taille : L")
    wrap = make_line("WRAP", 1, "3.00", name="Papier cadeau", kind="gift_wrap")
    order = make_order(
        db_session,
        shop,
        [bundle, child, wrap],
        customer=customer,
        billing_address={
            "first_name": "Claire",
            "last_name": "Petit",
            "company": "Petit SARL",
            "vat_id": "FR40303265045",
            "address1": "12 rue de la République",
            "postcode": "69002",
            "city": "Lyon",
            "country": "FR",
            "phone": "+33 4 72 00 00 00",
        },
        shipping_address={
            "first_name": "Claire",
            "last_name": "Petit",
            "address1": "Relais Tabac du Parc",
            "postcode": "69003",
            "city": "Lyon",
            "country": "FR",
            "relay_point_id": "MR-069123",
        },
        discount_codes=["BIENVENUE10"],
        discount_total=Decimal("4.30"),
        shipping_total=Decimal("4.90"),
        shipping_tax=Decimal("0.82"),
        tax_total=Decimal("7.93"),
        grand_total=Decimal("43.60"),
        subtotal=Decimal("43.00"),
        payment_method="Carte bancaire",
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        on_hold=True,
        hold_reason="Client injoignable",
    )
    db_session.flush()
    child.parent_line_id = bundle.id
    author = make_user("manager")
    db_session.add_all(
        [
            Transaction(
                order=order,
                external_id="ch_123",
                method="Carte bancaire",
                kind=TransactionKind.CAPTURE,
                amount=Decimal("43.60"),
                reference="PAY-REF-77",
                occurred_at=BASE_TIME + dt.timedelta(minutes=5),
            ),
            Shipment(
                order=order,
                number="EXP-0001",
                state=ShipmentState.SHIPPED,
                parcels=[
                    Parcel(
                        tracking_number="6A12345678901",
                        tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
                        weight_kg=Decimal("1.250"),
                    )
                ],
            ),
            Comment(order=order, author=author, text="Appeler avant 18 h."),
            Comment(
                order=order,
                author=author,
                text="Votre colis part demain.",
                visibility=CommentVisibility.CUSTOMER,
            ),
            OrderEvent(
                order=order,
                occurred_at=BASE_TIME,
                actor_type=ActorType.SHOP,
                kind="order.imported",
                details={"text": "Imported from the shop."},
            ),
            OrderEvent(
                order=order,
                occurred_at=BASE_TIME + dt.timedelta(minutes=5),
                actor_type=ActorType.SYSTEM,
                kind="payment.state_changed",
                details={"from": "unpaid", "to": "paid"},
            ),
            OrderEvent(
                order=order,
                occurred_at=BASE_TIME + dt.timedelta(minutes=30),
                actor_type=ActorType.USER,
                actor_user=author,
                kind="order.held",
                details={"reason": "Client injoignable"},
            ),
        ]
    )
    db_session.commit()
    return order


def test_detail_shows_everything_about_the_order(
    client: FlaskClient, login_as: Callable[..., User], full_order: Order
) -> None:
    login_as("viewer")
    html = page(client, f"/orders/{full_order.id}")
    # header, states, banners
    assert "Commande #1001" in html and "Boutique Lyon" in html
    assert "Validée" in html and "Payée" in html and "Non expédiée" in html
    assert "Statut envoyé à la boutique" in html
    assert "Pas prête à préparer" in html  # on hold
    assert "Client injoignable" in html
    # lines, bundle child indented right after its parent
    assert html.index("BOX-GIFT") < html.index("MUG-BLUE") < html.index("WRAP")
    assert 'class="bundle-child depth-1"' in html
    assert "3760000000017" in html and "Taille : L" in html
    assert "Papier cadeau" in html and "Emballage cadeau" in html  # name, then kind
    assert "20 %" in html
    # totals
    assert "Sous-total" in html and "43,00\xa0€" in html
    assert "BIENVENUE10" in html and "−4,30\xa0€" in html
    assert "Frais de port" in html and "4,90\xa0€" in html and "dont 0,82\xa0€ de TVA" in html
    assert "Total TTC" in html and "43,60\xa0€" in html
    # addresses
    assert "Adresse de facturation" in html and "Adresse de livraison" in html
    assert "Petit SARL" in html and "FR40303265045" in html
    assert "12 rue de la République" in html and "69002 Lyon" in html
    assert "Point relais MR-069123" in html
    # payments
    assert "Carte bancaire" in html and "PAY-REF-77" in html and "Encaissement" in html
    # shipments and parcels
    assert "Expédition EXP-0001" in html
    assert 'href="https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901"' in html
    assert "1,25 kg" in html
    # documents, comments
    assert "Aucune facture, aucun avoir ni bon de livraison" in html
    assert "Appeler avant 18 h." in html and "Visible par l&#39;acheteur" in html
    assert ">Interne</span>" in html


def test_timeline_is_newest_first_with_actors(
    client: FlaskClient, login_as: Callable[..., User], full_order: Order
) -> None:
    login_as("viewer")
    html = page(client, f"/orders/{full_order.id}")
    timeline = html[html.index('id="timeline"') :]
    held = timeline.index("Commande mise en attente")
    paid = timeline.index("État du paiement modifié")
    imported = timeline.index("Commande importée")
    assert held < paid < imported
    assert ">Manager</span>" in timeline  # the user's name
    assert ">Comptoir</span>" in timeline and ">Boutique</span>" in timeline


def test_timeline_kind_filter(
    client: FlaskClient, login_as: Callable[..., User], full_order: Order
) -> None:
    login_as("viewer")
    response = client.get(f"/orders/{full_order.id}/timeline?kinds=payment", headers=PARTIAL)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<section id="timeline"')
    assert "État du paiement modifié" in html
    assert "Commande importée" not in html and "Commande mise en attente" not in html
    assert 'value="payment" checked' in html
    both = page(client, f"/orders/{full_order.id}?kinds=order,payment")
    assert "Commande importée" in both and "État du paiement modifié" in both
    assert "<html" in both
    # Without htmx the timeline form falls back to the whole page.
    full = page(client, f"/orders/{full_order.id}/timeline?kinds=order")
    assert "<html" in full and "Commande importée" in full


def test_detail_without_shipments_says_so(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    order = make_order(db_session, make_shop(db_session))
    db_session.commit()
    login_as("manager")
    html = page(client, f"/orders/{order.id}")
    assert "Rien d’expédié pour l’instant" in html
    assert "Aucun paiement enregistré" in html
    assert "Aucun commentaire pour l’instant." in html
    assert "Rien ne s’est encore passé sur cette commande." in html


def test_unknown_order_is_a_404_page(client: FlaskClient, login_as: Callable[..., User]) -> None:
    login_as("viewer")
    response = client.get("/orders/999999")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<html" in html and "404" in html
    assert client.get("/orders/999999/timeline", headers=PARTIAL).status_code == 404


def test_warehouse_cannot_open_an_order(
    client: FlaskClient, login_as: Callable[..., User], full_order: Order
) -> None:
    login_as("warehouse")
    assert client.get(f"/orders/{full_order.id}").status_code == 403


def test_detail_shows_totals_that_do_not_add_up_discounts_and_components(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    shop = make_shop(db_session, key="nantes", name="Boutique Nantes")
    box = make_line("COFFRET", 1, "33.00", name="Coffret Provence")
    tea = make_line("THE-LAV", 2, "0.00", name="Thé à la lavande", tax_rate=Decimal("5.5"))
    ebook = make_line(
        "EBOOK",
        1,
        "3.225",
        name="Recettes de Provence (e-book)",
        total_gross=Decimal("3.23"),
        total_net=Decimal("2.69"),
        tax_amount=Decimal("0.54"),
        needs_shipping=False,
    )
    order = make_order(
        db_session,
        shop,
        [box, tea, ebook],
        discount_codes=["BIENVENUE10"],
        discounts=[
            {"code": "BIENVENUE10", "label": "Bienvenue -10 %", "amount": "3.62"},
            {"code": "", "label": "Livraison offerte", "amount": "4.90"},
        ],
        discount_total=Decimal("8.52"),
        shipping_total=Decimal("4.90"),
        subtotal=Decimal("36.23"),
        grand_total=Decimal("32.62"),
        computed_total=Decimal("32.61"),
    )
    db_session.flush()
    tea.parent_line_id = box.id
    db_session.commit()
    login_as("viewer")
    html = page(client, f"/orders/{order.id}")

    banner = html[html.index("totals-mismatch") :]
    banner = banner[: banner.index("</div>")]
    assert "Les totaux ne concordent pas" in banner
    assert "32,61\xa0€" in banner and "32,62\xa0€" in banner and "-0,01\xa0€" in banner
    # Each discount with its code or name and its amount.
    assert "BIENVENUE10" in html and "Bienvenue -10 %" in html and "−3,62\xa0€" in html
    assert "Livraison offerte" in html and "−4,90\xa0€" in html
    assert "−8,52\xa0€" in html  # their sum
    # The component right under its bundle, without money of its own.
    assert html.index("COFFRET") < html.index("THE-LAV") < html.index("EBOOK")
    tea_row = html[html.index("THE-LAV") : html.index("EBOOK")]
    assert "élément d’un lot" in tea_row and "bundle-child depth-1" in html
    assert "compris dans le lot" in tea_row and "€" not in tea_row
    # The e-book: its price at the shop's precision, and nothing to ship.
    ebook_row = html[html.index("EBOOK") :]
    ebook_row = ebook_row[: ebook_row.index("</tr>")]
    assert "3,225\xa0€" in ebook_row and "Rien à expédier" in ebook_row
    box_row = html[html.index("COFFRET") : html.index("THE-LAV")]
    assert "Rien à expédier" not in box_row and "33,00\xa0€" in box_row


def test_an_order_that_adds_up_has_no_totals_banner(
    client: FlaskClient, login_as: Callable[..., User], full_order: Order
) -> None:
    login_as("viewer")
    html = page(client, f"/orders/{full_order.id}")
    assert "totals-mismatch" not in html and "Rien à expédier" not in html
