"""Drill 7: deliveries sent again and out of order reach the state of sending each once, in order.

Webhooks (Shopify, WooCommerce). Orders on the emulators go through their lives (created,
updated, paid, cancelled); every change is captured as the signed delivery the shop would
POST. The deliveries plus 20 % duplicates (the same delivery again, as a shop's retry) are
shuffled and POSTed over real HTTP to a live Comptoir on loopback, and its worker applies the
inbox. A fresh database is sent the distinct deliveries once each, in order.

Change notifications (PrestaShop, Magento). Our shop modules' notifications (docs/
NOTIFICATIONS.md) name an order and its modification time, never the order: the worker reads
the order from the shop. A run thus ends on whatever the shop held when it was read, and no
notification can be sent before the change it tells of. Sending them all once the shops are
done, as the webhooks are, would make every read return the last version: both runs would
read the same copies, and the order of arrival would not matter at all. So each run replays
the same changes on the emulators instead (reset in between, on clocks of their own, so each
change gets the same modification time and each notification the same bytes):
- in order: a change's notifications are POSTed as it is made and the worker applies them
  before the next change, so every version of every order is read;
- shuffled: a change's notifications, and a copy of about one in five, join those on their
  way; after each change each of those arrives or not, in random order, and the worker runs
  now and then; once the shops are done the rest arrive, shuffled. A notification can come
  after later changes of its order, when the order already read at a later time must not
  be read again (unless the change leaves that time as it was: a message, a credit slip).
An order's last notification is sent after its last change, so both runs read every order in
its last version: the comparison is of final states, and which versions a run read on the
way is its path, counted apart. Since a fault both runs share would leave them equal, each
run is also held against the shops: every order's status, modification time, money paid and
refunded must be the shop's last.

In both halves the orders, their lines, payments, states, timeline facts and outbox messages
must be equal; the drill counts what was lost and what was duplicated, prints both and
asserts they are zero.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from werkzeug.serving import make_server

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.connectors.test_notifications import body as notification_body
from tests.connectors.test_notifications import sign
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.reliability.conftest import drill_size, shopify_shop, woocommerce_shop
from tests.reliability.test_shop_outage import prestashop_orders
from web.app import create_app
from web.db import make_engine
from web.models import (
    CarrierMapping,
    InboxEvent,
    Order,
    OrderEvent,
    OrderLine,
    OutboxMessage,
    Shop,
    Transaction,
)
from web.models.enums import InboxState, TransactionKind
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.shops import create_shop
from web.services.sync import process_pending

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DUPLICATE_SHARE = 0.2
# Partial: an order refunded in full before the desk saw it paid is never validated, while
# one seen paid first was (the desk does not go back in time), so a full refund's final
# state depends on the order the deliveries came in by design.
PARTIAL_REFUND = "10.00"
# The path an order took to its final state, as its timeline tells it: a copy older than the
# one applied is noted as stale, a newer one as an update, each payment state passed through
# as a change, and what a copy changed since the one read before it (an address corrected in
# the shop) as an edit. Which copies and states a shuffled run sees depends on the order they
# came in (a notified change, on which versions the worker happened to read), so these are
# counted apart and not compared (the final payment state and address are).
PATH_KINDS = frozenset(
    {"inbox.stale", "order.updated_by_shop", "payment.state_changed", "order.edited_at_shop"}
)


@dataclass(frozen=True)
class Delivery:
    platform: str
    body: bytes
    headers: dict[str, str]


def fixture(platform: str, name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / platform / name).read_text())
    order: dict[str, Any] = data.get("order", data)
    order.pop("id", None)
    return order


# --- The shops' side: orders living their lives, each change a signed delivery ---------------


def shopify_lives(shop: ShopifyEmulator, orders: int, rng: random.Random) -> list[Delivery]:
    base = fixture("shopify", "order-fr-relay-point.json")
    base.update(financial_status="pending", cancelled_at=None, cancel_reason=None)
    deliveries: list[Delivery] = []

    def send(topic: str, order_id: Any) -> None:
        deliveries.append(Delivery("shopify", *shop.webhook(topic, order_id)))

    for n in range(orders):
        stored = shop.add_order({**base, "name": f"#S{n}", "order_number": 10_000 + n})
        order_id = stored["id"]
        shop.set_transactions(order_id, [])
        send("orders/create", order_id)
        shop.update_order(order_id, note=f"Sonner {n} fois")
        send("orders/updated", order_id)
        if rng.random() < 0.3:
            shop.update_order(
                order_id,
                cancelled_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                cancel_reason="customer",
                financial_status="voided",
            )
            send("orders/cancelled", order_id)
            continue
        order = shop.orders[str(order_id)]
        shop.set_transactions(order_id, [shop._transaction(order, "sale", order["total_price"])])
        shop.update_order(order_id, financial_status="paid")
        send("orders/paid", order_id)
        if rng.random() < 0.3:
            refund = shop._transaction(order, "refund", PARTIAL_REFUND)
            shop.set_transactions(order_id, [*shop.transactions[str(order_id)], refund])
            shop.update_order(
                order_id,
                financial_status="partially_refunded",
                refunds=[{"id": refund["id"], "note": "Retour", "transactions": [refund]}],
            )
            send("orders/updated", order_id)
    return deliveries


def woo_lives(shop: WooCommerceEmulator, orders: int, rng: random.Random) -> list[Delivery]:
    base = fixture("woocommerce", "fr-order-relay-coupon-refund.json")
    base.update(status="pending", date_paid=None, date_paid_gmt=None, transaction_id="", refunds=[])
    deliveries: list[Delivery] = []

    def send(topic: str, order_id: str) -> None:
        deliveries.append(Delivery("woocommerce", *shop.webhook(topic, order_id)))

    for n in range(orders):
        order_id = shop.add_order({**base, "number": f"W{n}"})
        shop.update_order(order_id)  # stamped now, strictly later than the fixture's date
        send("order.created", order_id)
        shop.update_order(order_id, customer_note=f"Sonner {n} fois")
        send("order.updated", order_id)
        if rng.random() < 0.3:
            shop.update_order(order_id, status="cancelled")
            send("order.updated", order_id)
            continue
        paid = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()
        shop.update_order(
            order_id,
            status="processing",
            date_paid=paid,
            date_paid_gmt=paid,
            transaction_id=f"ch_{order_id}",
        )
        send("order.updated", order_id)
        if rng.random() < 0.3:
            refund = {"id": 700_000 + n, "reason": "Retour", "total": f"-{PARTIAL_REFUND}"}
            shop.update_order(order_id, refunds=[refund])
            send("order.updated", order_id)
    return deliveries


# --- The modules' side: PrestaShop and Magento orders, each change a signed notification -----

MODULE_SECRET = "drill-7-the-secret-pasted-into-both-modules"
# Each run replays the changes on clocks of their own, started at these times of a winter day
# (no daylight saving change to make a local time ambiguous).
PRESTASHOP_EPOCH = dt.datetime(2026, 2, 2, 9, 0, 0)  # shop-local, as PrestaShop stores times
MAGENTO_EPOCH = dt.datetime(2026, 2, 2, 8, 0, 0, tzinfo=dt.UTC)
SHOP_TIME = "%Y-%m-%d %H:%M:%S"
MODULE_VERSIONS = {"prestashop": ("PrestaShop", "8.1.7"), "magento": ("Magento", "2.4.7")}
# A GET of one order: Comptoir reading a notified change (the PrestaShop order's look-ups and
# payments are list requests).
ORDER_READ = re.compile(r".*/(api|V1)/orders/[0-9]+")

Change = Callable[[int], list[Delivery]]
# What Comptoir must end with for each order: its status, modification time (UTC), the money
# paid and the money refunded, as the shop holds them.
Version = tuple[str, dt.datetime, Decimal, Decimal]


def notification(
    platform: str, event: str, order_id: str, date_upd: str, change_id: str, tz: dt.tzinfo
) -> Delivery:
    """The signed body the shop's module POSTs for one change of one order."""
    name, version = MODULE_VERSIONS[platform]
    sent_at = dt.datetime.strptime(date_upd, SHOP_TIME).replace(tzinfo=tz)
    raw = notification_body(
        event=event,
        order_id=order_id,
        date_upd=date_upd,
        change_id=change_id or None,
        sent_at=sent_at.isoformat(),
        platform_version=version,
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Comptoir-{name}/1.0.0 ({name} {version})",
        "X-Comptoir-Event": event,
        "X-Comptoir-Hmac-Sha256": sign(MODULE_SECRET, raw),
    }
    return Delivery(platform, raw, headers)


def change_of(delivery: Delivery) -> tuple[str, str, str, str]:
    """The change a notification names: the notifications of one change are stored once."""
    sent = json.loads(delivery.body)
    return (delivery.platform, sent["order_id"], sent["date_upd"], sent.get("change_id", ""))


class ModuleShops:
    """A PrestaShop and a Magento emulator whose orders change as merchants and buyers change
    them; each change returns the notifications the shop's module sends for it."""

    def __init__(self, prestashop: PrestaShopEmulator, magento: MagentoEmulator) -> None:
        self.prestashop = prestashop
        self.magento = magento
        self.order_ids: dict[int, str] = {}
        self._add_prestashop_order: Callable[[int], str] = prestashop_orders(prestashop)
        self._magento_order = fixture("magento", "fr-order-company-bundle.json")
        for name in ("entity_id", "increment_id", "created_at", "updated_at"):
            self._magento_order.pop(name)

    def reset(self) -> None:
        """Fresh shops, their clocks at the epoch: the same changes make the same bytes."""
        self.prestashop.reset()
        self.magento.reset()
        self.order_ids.clear()
        ticks = itertools.count()
        self.prestashop.clock = lambda: PRESTASHOP_EPOCH + dt.timedelta(seconds=next(ticks))
        # Magento's stamps move a second past the last one while its clock stands still.
        self.magento.clock = lambda: MAGENTO_EPOCH
        self._add_prestashop_order = prestashop_orders(self.prestashop)

    def lives(self, orders: int, rng: random.Random) -> list[list[tuple[Change, int]]]:
        """Each order's changes in the order they happen, drawn once for both runs."""
        lives: list[list[tuple[Change, int]]] = []
        for n in range(orders):
            life: list[Change]
            if n % 2 == 0:
                life = [self.prestashop_created, self.prestashop_message, self.prestashop_address]
                cancel, pay, refund = (
                    self.prestashop_cancelled,
                    self.prestashop_paid,
                    self.prestashop_refunded,
                )
            else:
                life = [self.magento_created, self.magento_note]
                cancel, pay, refund = (
                    self.magento_cancelled,
                    self.magento_paid,
                    self.magento_refunded,
                )
            if rng.random() < 0.3:
                life.append(cancel)
            else:
                life.append(pay)
                if rng.random() < 0.3:
                    life.append(refund)
            lives.append([(change, n) for change in life])
        return lives

    # PrestaShop: the hooks of modules/prestashop/comptoir/src/HookEvents.php.

    def _prestashop(self, n: int, event: str, change_id: str = "") -> Delivery:
        order_id = self.order_ids[n]
        date_upd = self.prestashop.get("orders", order_id)["date_upd"]
        return notification("prestashop", event, order_id, date_upd, change_id, self.prestashop.tz)

    def prestashop_created(self, n: int) -> list[Delivery]:
        """The buyer orders, to pay by bank wire (actionValidateOrder)."""
        order_id = self._add_prestashop_order(n)
        self.order_ids[n] = order_id
        placed = self.prestashop.now()
        self.prestashop.update_order(order_id, date_add=placed, date_upd=placed)
        return [self._prestashop(n, "order.created")]

    def prestashop_message(self, n: int) -> list[Delivery]:
        """The buyer writes on the order's thread, which leaves its date_upd as it was
        (actionObjectCustomerMessageAddAfter: a change id). Comptoir reads the order again
        and finds nothing new in it: the read must leave no second effect."""
        now = self.prestashop.now()
        thread = self.prestashop.add(
            "customer_threads",
            {
                "id_lang": "2",
                "id_shop": "1",
                "id_customer": "201",
                "id_order": self.order_ids[n],
                "id_contact": "0",
                "email": "camille.dupont@atelier-dupont.fr",
                "token": f"drill{n:011d}",
                "status": "open",
                "date_add": now,
                "date_upd": now,
            },
        )
        message = self.prestashop.add(
            "customer_messages",
            {
                "id_employee": "0",
                "id_customer_thread": thread,
                "message": "Pouvez-vous livrer avant vendredi ?",
                "private": "0",
                "date_add": now,
                "date_upd": now,
                "read": "0",
            },
        )
        return [self._prestashop(n, "order.message_added", f"message:{message}")]

    def prestashop_address(self, n: int) -> list[Delivery]:
        """The merchant corrects the delivery address (actionObjectOrderUpdateAfter)."""
        corrected = {
            **self.prestashop.get("addresses", 301),
            "id": "",
            "address2": f"Sonner {n} fois",
        }
        address_id = self.prestashop.add("addresses", corrected)
        self.prestashop.update_order(self.order_ids[n], id_address_delivery=address_id)
        return [self._prestashop(n, "order.updated")]

    def _prestashop_state(self, n: int, state: str, **changes: str) -> list[Delivery]:
        """A new state from the order page: its history row, the order's state and date_upd
        at one time, and the two hooks it fires (one change: Comptoir stores it once)."""
        order_id = self.order_ids[n]
        now = self.prestashop.now()
        history = {
            "id_employee": "1",
            "id_order_state": state,
            "id_order": order_id,
            "date_add": now,
        }
        self.prestashop.add("order_histories", history)
        self.prestashop.update_order(order_id, current_state=state, date_upd=now, **changes)
        return [self._prestashop(n, "order.status_changed"), self._prestashop(n, "order.updated")]

    def prestashop_cancelled(self, n: int) -> list[Delivery]:
        """The merchant cancels the unpaid order."""
        return self._prestashop_state(n, "6")

    def prestashop_paid(self, n: int) -> list[Delivery]:
        """The bank wire comes in: its payment, then Payment accepted."""
        order = self.prestashop.get("orders", self.order_ids[n])
        total = order["total_paid_tax_incl"]
        payment = {
            "order_reference": order["reference"],
            "id_currency": "1",
            "amount": total,
            "payment_method": "Virement bancaire",
            "conversion_rate": "1.000000",
            "transaction_id": f"VIR-{n:06d}",
            "date_add": self.prestashop.now(),
        }
        self.prestashop.add("order_payments", payment)
        return self._prestashop_state(n, "2", valid="1", total_paid_real=total)

    def prestashop_refunded(self, n: int) -> list[Delivery]:
        """A partial refund: a credit slip, which leaves the order's date_upd as it was
        (actionOrderSlipAdd: a change id)."""
        now = self.prestashop.now()
        slip = {
            "id_customer": "201",
            "id_order": self.order_ids[n],
            "conversion_rate": "1.000000",
            "total_products_tax_excl": "8.333333",
            "total_products_tax_incl": PARTIAL_REFUND,
            "total_shipping_tax_excl": "0.000000",
            "total_shipping_tax_incl": "0.000000",
            "amount": PARTIAL_REFUND,
            "shipping_cost": "0",
            "shipping_cost_amount": "0.000000",
            "partial": "1",
            "date_add": now,
            "date_upd": now,
            "order_slip_type": "0",
        }
        slip_id = self.prestashop.add("order_slip", slip)
        return [self._prestashop(n, "order.refunded", f"slip:{slip_id}")]

    # Magento: the observers of modules/magento/Notification/Recorder.php.

    def _magento(self, n: int, event: str, change_id: str = "") -> Delivery:
        order_id = self.order_ids[n]
        date_upd = self.magento.orders[int(order_id)]["updated_at"]
        return notification("magento", event, order_id, date_upd, change_id, dt.UTC)

    def magento_created(self, n: int) -> list[Delivery]:
        """The buyer orders on a purchase order (the order's first save)."""
        stored = self.magento.add_order(self._magento_order)
        self.order_ids[n] = str(stored["entity_id"])
        return [self._magento(n, "order.created")]

    def magento_note(self, n: int) -> list[Delivery]:
        """The order's note changes (sales_order_save_after)."""
        self.magento.update_order(self.order_ids[n], customer_note=f"Sonner {n} fois")
        return [self._magento(n, "order.updated")]

    def magento_cancelled(self, n: int) -> list[Delivery]:
        """The merchant cancels the unpaid order: its state, a status-history entry at the
        same time, and the two observers it wakes (one change)."""
        order_id = self.order_ids[n]
        order = self.magento.update_order(order_id, state="canceled", status="canceled")
        entry = {
            "entity_id": 90_000 + n,
            "parent_id": int(order_id),
            "entity_name": "order",
            "status": "canceled",
            "comment": "Annulée à la demande du client",
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
            "created_at": order["updated_at"],
        }
        histories = [entry, *(order.get("status_histories") or [])]
        self.magento.update_order(
            order_id, status_histories=histories, updated_at=order["updated_at"]
        )
        return [self._magento(n, "order.status_changed"), self._magento(n, "order.updated")]

    def magento_paid(self, n: int) -> list[Delivery]:
        """The purchase order is paid: an invoice captures the total (a change id), the
        order moves to processing."""
        order = self.magento.orders[int(self.order_ids[n])]
        items = [{**item, "qty_invoiced": item["qty_ordered"]} for item in order["items"]]
        total = order["grand_total"]
        self.magento.update_order(
            self.order_ids[n],
            state="processing",
            status="processing",
            items=items,
            total_invoiced=total,
            total_paid=total,
            total_due=0,
        )
        return [
            self._magento(n, "order.invoiced", f"invoice:{n}"),
            self._magento(n, "order.updated"),
        ]

    def magento_refunded(self, n: int) -> list[Delivery]:
        """A credit memo refunds part of it (a change id)."""
        self.magento.update_order(self.order_ids[n], total_refunded=float(PARTIAL_REFUND))
        return [
            self._magento(n, "order.refunded", f"creditmemo:{n}"),
            self._magento(n, "order.updated"),
        ]

    # What the shops hold.

    def last_versions(self) -> dict[tuple[str, str], Version]:
        """Each order as the shop holds it now."""
        paid: defaultdict[str, Decimal] = defaultdict(Decimal)
        for payment in self.prestashop.objects("order_payments"):
            paid[payment["order_reference"]] += Decimal(payment["amount"])
        refunded: defaultdict[str, Decimal] = defaultdict(Decimal)
        for slip in self.prestashop.objects("order_slip"):
            amount = Decimal(slip["total_products_tax_incl"])
            refunded[slip["id_order"]] += amount + Decimal(slip["total_shipping_tax_incl"])
        versions: dict[tuple[str, str], Version] = {}
        for order in self.prestashop.objects("orders"):
            local = dt.datetime.strptime(order["date_upd"], SHOP_TIME)
            versions["prestashop", order["id"]] = (
                order["current_state"],
                local.replace(tzinfo=self.prestashop.tz).astimezone(dt.UTC),
                paid[order["reference"]],
                refunded[order["id"]],
            )
        for order in self.magento.orders.values():
            updated = dt.datetime.strptime(order["updated_at"], SHOP_TIME)
            versions["magento", str(order["entity_id"])] = (
                order["status"],
                updated.replace(tzinfo=dt.UTC),
                Decimal(str(order.get("total_paid") or 0)),
                Decimal(str(order.get("total_refunded") or 0)),
            )
        return versions

    def order_reads(self) -> int:
        """How many times an order was read from the shops since the last reset."""
        return sum(
            1
            for emulator in (self.prestashop, self.magento)
            for request in emulator.requests
            if request.method == "GET" and ORDER_READ.fullmatch(request.path)
        )


# Orders living at once: an order's next change comes a few changes of others later, so a
# notification held back a few changes often arrives after its order's next one.
ORDERS_AT_ONCE = 3


def interleaved(
    lives: list[list[tuple[Change, int]]], rng: random.Random
) -> list[tuple[Change, int]]:
    """The orders' changes mixed as the shops make them: orders begin one after another, a
    few live at once, each one's changes in their order."""
    upcoming = [list(reversed(life)) for life in reversed(lives)]
    living: list[list[tuple[Change, int]]] = []
    script: list[tuple[Change, int]] = []
    while upcoming or living:
        while upcoming and len(living) < ORDERS_AT_ONCE:
            living.append(upcoming.pop())
        life = living[rng.randrange(len(living))]
        script.append(life.pop())
        if not life:
            living.remove(life)
    return script


# --- Comptoir's side: a live app over loopback HTTP, its worker applying the inbox -----------


class LiveComptoir:
    """A migrated database of its own, served over loopback by a threaded WSGI server."""

    def __init__(self, tmp: Path, name: str, encryption_key: str) -> None:
        url = separate_database_url(tmp, name)
        engine = make_engine(url)
        reset_schema(engine)
        engine.dispose()
        migrate(url)
        self.app = create_app(
            {
                "DATABASE_URL": url,
                "INSTANCE_PATH": str(tmp / name),
                "SECRET_KEY": "drill-7",
                "ENCRYPTION_KEY": encryption_key,
                "ALLOW_PRIVATE_SHOP_URLS": True,
            }
        )
        self.sessions = self.app.extensions["comptoir.sessions"]
        self.engine: Engine = self.app.extensions["comptoir.engine"]
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._http = httpx.Client(base_url=self.base_url, timeout=30)

    def add_shops(self, shopify: ShopifyEmulator, woo: WooCommerceEmulator) -> None:
        with self.sessions.begin() as session:
            modes = ensure_default_shipping_modes(session)
            made = shopify_shop(session, shopify, key="shopify")
            made.carrier_mappings.append(
                CarrierMapping(
                    shop_label="Mondial Relay - Point Relais", shipping_mode=modes["mondial_relay"]
                )
            )
            made = woocommerce_shop(session, woo, key="woocommerce")
            made.carrier_mappings.append(
                CarrierMapping(
                    shop_label="Mondial Relay - Point Relais®",
                    shipping_mode=modes["mondial_relay"],
                )
            )

    def add_module_shops(self, prestashop: PrestaShopEmulator, magento: MagentoEmulator) -> None:
        with self.sessions.begin() as session:
            modes = ensure_default_shipping_modes(session)
            made = create_shop(
                session,
                "prestashop",
                "Épicerie Fine",
                prestashop.base_url,
                api_key=DEFAULT_KEY,
                webhook_secret=MODULE_SECRET,
                key="prestashop",
            )
            made.carrier_mappings.append(
                CarrierMapping(shop_label="Colissimo", shipping_mode=modes["colissimo"])
            )
            made = create_shop(
                session,
                "magento",
                "Papeterie",
                magento.base_url,
                api_key=magento.token,
                webhook_secret=MODULE_SECRET,
                key="magento",
            )
            made.carrier_mappings.append(
                CarrierMapping(
                    shop_label="Colissimo - Domicile avec signature",
                    shipping_mode=modes["colissimo"],
                )
            )

    def post_all(self, deliveries: list[Delivery]) -> Counter[str]:
        """POST each delivery, one connection kept alive; the answers' statuses counted."""
        answers: Counter[str] = Counter()
        for delivery in deliveries:
            url = f"/hooks/{delivery.platform}/{delivery.platform}"
            response = self._http.post(url, content=delivery.body, headers=delivery.headers)
            assert response.status_code == 200, response.text[:300]
            answers[response.json()["status"]] += 1
        return answers

    def apply_inbox(self) -> None:
        """The worker's inbox pass, until nothing is due (follow-ups read the shops)."""
        while process_pending(self.sessions, limit=10_000):
            pass
        with self.sessions() as session:
            waiting = session.scalars(
                select(InboxEvent).where(InboxEvent.state != InboxState.PROCESSED)
            ).all()
            assert not waiting, [(e.topic, e.state, e.error) for e in waiting]

    def close(self) -> None:
        self._http.close()
        self._server.shutdown()
        self._thread.join(timeout=10)
        self.engine.dispose()


# --- What is compared ------------------------------------------------------------------------

# Set by the desk when it processed a delivery, not by what the shops said.
LOCAL_COLUMNS = frozenset(
    {
        "id",
        "order_id",
        "shop_id",
        "customer_id",
        "created_at",
        "updated_at",
        "validated_at",
        "cancelled_at",
        "closed_at",
        "created_by_id",
        "next_attempt_at",
        "claimed_until",
        "sent_at",
    }
)


# Path too, per platform: Magento keeps no list of payments, so the connector makes them up
# from the order's paid and refunded totals, dated at the modification time of the copy they
# were first read in. A run that first reads a paid order after its credit memo dates the
# capture then; the one that read the invoiced copy dates it at the invoice.
PATH_COLUMNS = {("payments", "magento"): frozenset({"occurred_at"})}


def columns(row: Any, table: Any, apart: frozenset[str], lines: dict[int, str]) -> tuple[Any, ...]:
    """What the shops decided of a row; a bundle component's parent line by its shop id
    (line ids are each database's own, numbered in the order the orders came in)."""
    found = []
    for column in table.columns:
        if column.name in LOCAL_COLUMNS or column.name in apart:
            continue
        value = getattr(row, column.name)
        if column.name == "parent_line_id" and value is not None:
            value = lines[value]
        found.append((column.name, str(value)))
    return tuple(found)


def state_of(live: LiveComptoir) -> dict[str, Counter[Any]]:
    """Every fact the deliveries left, keyed by shop and order as the shops name them."""
    with live.sessions() as session:
        orders: dict[int, tuple[str, str]] = {}
        platforms: dict[int, str] = {}
        for order in session.scalars(select(Order).join(Shop)):
            orders[order.id] = (order.shop.key, order.external_id)
            platforms[order.id] = order.shop.platform.value
        lines = {
            line_id: external_id
            for line_id, external_id in session.execute(select(OrderLine.id, OrderLine.external_id))
        }
        found: dict[str, Counter[Any]] = {}
        path: Counter[Any] = Counter()
        for name, model in (
            ("orders", Order),
            ("lines", OrderLine),
            ("payments", Transaction),
            ("outbox", OutboxMessage),
        ):
            table = model.__table__
            key = "id" if model is Order else "order_id"
            found[name] = Counter()
            for row in session.execute(select(table)):
                order_id = getattr(row, key)
                apart = PATH_COLUMNS.get((name, platforms.get(order_id, "")), frozenset())
                found[name][orders.get(order_id), columns(row, table, apart, lines)] += 1
                path.update(
                    (orders.get(order_id), name, column, str(getattr(row, column)))
                    for column in apart
                )
        timeline: Counter[Any] = Counter()
        for event in session.scalars(select(OrderEvent)):
            fact = (orders[event.order_id], event.kind, event.actor_type.value)
            (path if event.kind in PATH_KINDS else timeline)[fact] += 1
        found["timeline"] = timeline
        found["path"] = path
    return found


def behind_the_shops(live: LiveComptoir, shops: ModuleShops) -> list[Any]:
    """Orders whose copy in Comptoir is not the shop's last version: (order, ours, the shop's)."""
    ours: dict[tuple[str, str], Version] = {}
    with live.sessions() as session:
        for order in session.scalars(select(Order).join(Shop)):
            refunds = [p.amount for p in order.transactions if p.kind == TransactionKind.REFUND]
            payments = [p.amount for p in order.transactions if p.kind != TransactionKind.REFUND]
            ours[order.shop.key, order.external_id] = (
                order.shop_status,
                order.shop_updated_at,
                sum(payments, Decimal(0)),
                sum(refunds, Decimal(0)),
            )
    return [
        (key, ours.get(key), version)
        for key, version in shops.last_versions().items()
        if ours.get(key) != version
    ]


def differences(name: str, fact: Any, extra: Counter[Any]) -> tuple[Any, ...]:
    """A lost fact, and how the same order's row that came instead differs from it."""
    if name == "timeline":
        return ("lost", name, fact)
    owner, wanted = fact
    for other_owner, other in extra:
        if other_owner == owner:
            changed = [(w, o) for w, o in zip(wanted, other, strict=False) if w != o]
            return ("changed", name, owner, changed)
    return ("lost", name, fact)


def lost_and_duplicated(
    expected: dict[str, Counter[Any]], got: dict[str, Counter[Any]]
) -> tuple[dict[str, int], dict[str, int], list[Any]]:
    lost: dict[str, int] = {}
    duplicated: dict[str, int] = {}
    examples: list[Any] = []
    for name, wanted in expected.items():
        if name == "path":
            continue
        missing = wanted - got[name]
        extra = got[name] - wanted
        lost[name] = sum(missing.values())
        duplicated[name] = sum(extra.values())
        examples += [differences(name, fact, extra) for fact in list(missing)[:3]]
        examples += [("extra", name, fact) for fact in list(extra)[:3]]
    return lost, duplicated, examples


# --- The drill --------------------------------------------------------------------------------


@pytest.fixture()
def emulators() -> Iterator[tuple[ShopifyEmulator, WooCommerceEmulator]]:
    # A bucket that never fills: the drill is about duplicates, not Shopify's rate limit.
    with (
        ShopifyEmulator(bucket_capacity=1_000_000, leak_rate=1_000_000.0) as shopify,
        WooCommerceEmulator() as woo,
    ):
        yield shopify, woo  # type: ignore[misc]


def test_shuffled_duplicated_deliveries_reach_the_in_order_state(
    emulators: tuple[ShopifyEmulator, WooCommerceEmulator],
    tmp_path: Path,
    encryption_key: str,
) -> None:
    shopify, woo = emulators
    total = drill_size(60, 10_000)
    distinct_wanted = round(total / (1 + DUPLICATE_SHARE))
    rng = random.Random(7)
    # About 3.2 deliveries per order's life.
    orders = max(2, round(distinct_wanted / 3.2))
    distinct = shopify_lives(shopify, orders // 2, rng) + woo_lives(woo, orders - orders // 2, rng)
    again = rng.choices(distinct, k=round(len(distinct) * DUPLICATE_SHARE))
    shuffled = distinct + again
    rng.shuffle(shuffled)

    runs: dict[str, dict[str, Counter[Any]]] = {}
    answers: dict[str, Counter[str]] = {}
    for name, sent in (("in_order", distinct), ("shuffled", shuffled)):
        live = LiveComptoir(tmp_path, f"drill7_{name}", encryption_key)
        try:
            live.add_shops(shopify, woo)
            answers[name] = live.post_all(sent)
            live.apply_inbox()
            runs[name] = state_of(live)
        finally:
            live.close()

    lost, duplicated, examples = lost_and_duplicated(runs["in_order"], runs["shuffled"])
    print(
        f"\ndrill 7: {len(shuffled)} deliveries ({len(distinct)} distinct, {len(again)} again, "
        f"shuffled) for {orders} orders; answers {dict(answers['shuffled'])}; "
        f"lost {sum(lost.values())} {lost}; duplicated {sum(duplicated.values())} {duplicated}"
    )
    assert answers["in_order"] == {"stored": len(distinct)}
    assert answers["shuffled"] == {"stored": len(distinct), "duplicate": len(again)}
    assert not examples, examples[:12]
    assert sum(lost.values()) == 0 and sum(duplicated.values()) == 0
    # The check is not vacuous: every order arrived, paid ones with their payment.
    assert sum(runs["in_order"]["orders"].values()) == orders
    assert sum(runs["in_order"]["payments"].values()) > 0


# --- The drill over change notifications -------------------------------------------------------

# About 4.8 notifications per order's life (a state change sends two).
NOTIFICATIONS_PER_LIFE = 4.8
# The chance a notification on its way arrives after each change (it waits 5 changes on
# average, some many more), and that the shuffled run's worker applies the inbox.
ARRIVAL_SHARE = 0.2
WORKER_SHARE = 0.25


def play_in_order(
    live: LiveComptoir, script: list[tuple[Change, int]]
) -> tuple[list[Delivery], Counter[str]]:
    """Each change's notifications POSTed as it is made and applied before the next change."""
    sent: list[Delivery] = []
    answers: Counter[str] = Counter()
    for change, n in script:
        deliveries = change(n)
        sent += deliveries
        answers += live.post_all(deliveries)
        live.apply_inbox()
    return sent, answers


def play_shuffled(
    live: LiveComptoir, script: list[tuple[Change, int]], rng: random.Random
) -> tuple[list[Delivery], list[Delivery], Counter[str]]:
    """Each change's notifications, some twice, on their way: after each change every one
    arrives or not (in random order), the worker runs now and then; the rest arrive
    shuffled once the shops are done. The notifications sent, and as they arrived."""
    sent: list[Delivery] = []
    arrived: list[Delivery] = []
    on_the_way: list[Delivery] = []
    answers: Counter[str] = Counter()
    for change, n in script:
        for delivery in change(n):
            sent.append(delivery)
            on_the_way += [delivery, delivery] if rng.random() < DUPLICATE_SHARE else [delivery]
        rng.shuffle(on_the_way)
        arrives = [rng.random() < ARRIVAL_SHARE for _ in on_the_way]
        now = [d for d, due in zip(on_the_way, arrives, strict=True) if due]
        on_the_way = [d for d, due in zip(on_the_way, arrives, strict=True) if not due]
        arrived += now
        answers += live.post_all(now)
        if rng.random() < WORKER_SHARE:
            live.apply_inbox()
    rng.shuffle(on_the_way)
    arrived += on_the_way
    answers += live.post_all(on_the_way)
    live.apply_inbox()
    return sent, arrived, answers


def overtaken(arrived: list[Delivery]) -> int:
    """How many notifications arrived after one of a later change of their order."""
    newest: dict[tuple[str, str], str] = {}
    late = 0
    for delivery in arrived:
        platform, order_id, date_upd, _ = change_of(delivery)
        seen = newest.get((platform, order_id), "")
        late += date_upd < seen
        newest[platform, order_id] = max(seen, date_upd)
    return late


@pytest.fixture()
def module_shops() -> Iterator[ModuleShops]:
    with PrestaShopEmulator() as prestashop, MagentoEmulator() as magento:
        yield ModuleShops(prestashop, magento)  # type: ignore[arg-type]


def test_shuffled_duplicated_notifications_reach_the_in_order_state(
    module_shops: ModuleShops, tmp_path: Path, encryption_key: str
) -> None:
    shops = module_shops
    total = drill_size(48, 10_000)
    rng = random.Random(7)
    orders = max(2, round(total / (1 + DUPLICATE_SHARE) / NOTIFICATIONS_PER_LIFE))
    script = interleaved(shops.lives(orders, rng), rng)

    runs: dict[str, dict[str, Counter[Any]]] = {}
    sent: dict[str, list[Delivery]] = {}
    answers: dict[str, Counter[str]] = {}
    behind: dict[str, list[Any]] = {}
    reads: dict[str, int] = {}
    arrived: list[Delivery] = []
    for name in ("in_order", "shuffled"):
        shops.reset()
        live = LiveComptoir(tmp_path, f"drill7_notified_{name}", encryption_key)
        try:
            live.add_module_shops(shops.prestashop, shops.magento)
            if name == "in_order":
                sent[name], answers[name] = play_in_order(live, script)
            else:
                sent[name], arrived, answers[name] = play_shuffled(live, script, random.Random(17))
            runs[name] = state_of(live)
            behind[name] = behind_the_shops(live, shops)
            reads[name] = shops.order_reads()
        finally:
            live.close()

    distinct = sent["in_order"]
    again = len(arrived) - len(distinct)
    changes = len({change_of(delivery) for delivery in distinct})
    lost, duplicated, examples = lost_and_duplicated(runs["in_order"], runs["shuffled"])
    print(
        f"\ndrill 7 (notifications): {len(distinct) + again} notifications ({len(distinct)} "
        f"distinct for {changes} changes, {again} again, shuffled: {overtaken(arrived)} after a "
        f"later change's) for {orders} orders; answers {dict(answers['shuffled'])}; "
        f"orders read {reads['in_order']} in order, "
        f"{reads['shuffled']} shuffled; path facts {sum(runs['in_order']['path'].values())} "
        f"in order, {sum(runs['shuffled']['path'].values())} shuffled; behind the shops "
        f"{len(behind['in_order'])} in order, {len(behind['shuffled'])} shuffled; "
        f"lost {sum(lost.values())} {lost}; duplicated {sum(duplicated.values())} {duplicated}"
    )
    # Both runs made the same changes: the same notifications, to the byte.
    assert sent["shuffled"] == distinct
    # A state change fires two hooks: their notifications name one change, stored once.
    assert answers["in_order"] == {"stored": changes, "duplicate": len(distinct) - changes}
    assert answers["shuffled"] == {"stored": changes, "duplicate": len(distinct) + again - changes}
    assert not behind["in_order"] and not behind["shuffled"], behind
    assert not examples, examples[:12]
    assert sum(lost.values()) == 0 and sum(duplicated.values()) == 0
    # The check is not vacuous: every order arrived, and the shuffled run went another way
    # (notifications came after a later change's, and an order read later is not read again).
    assert sum(runs["in_order"]["orders"].values()) == orders
    assert overtaken(arrived) > 0 and reads["shuffled"] < reads["in_order"]
    # Every way a life ends was lived on both shops: cancelled, paid, paid and part refunded.
    endings = {(shop, v[0], v[3] > 0) for (shop, _), v in shops.last_versions().items()}
    assert endings == {
        ("prestashop", "6", False),
        ("prestashop", "2", False),
        ("prestashop", "2", True),
        ("magento", "canceled", False),
        ("magento", "processing", False),
        ("magento", "processing", True),
    }
