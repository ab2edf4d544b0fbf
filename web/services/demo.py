"""Seed a realistic demo: two French shops, carriers, customers and ~300 coherent orders.

Everything is drawn from one `random.Random(seed)`, so the same seed and `today` give the
same data. All timestamps are timezone-aware UTC and fall before midnight (Paris) of `today`;
money is `Decimal` to the cent.

Amount conventions (prices include tax, as on both platforms):
- a line's `total_gross` = `unit_price` x `quantity` - `discount_amount`, split exactly into
  `total_net` + `tax_amount` at the line's rate;
- `subtotal` = sum of `unit_price` x `quantity` (before discounts), `discount_total` = sum of
  line discounts (kept with its code and amount in `discounts`), `shipping_total` includes
  20 % VAT (`shipping_tax`);
- `grand_total` = `subtotal` - `discount_total` + `shipping_total`
  = sum of line `total_gross` + `shipping_total`;
- `tax_total` = sum of line `tax_amount` + `shipping_tax`.

Contact data cannot reach anyone: e-mails use the reserved example.com/.net/.org domains and
phone numbers come from the ranges ARCEP sets aside for fiction (01 99 00, 06 39 98, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import string
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import ean, luhn

from web.models import (
    CarrierMapping,
    Comment,
    Customer,
    CustomerShopLink,
    InboxEvent,
    MilestoneMapping,
    Order,
    OrderLine,
    OutboxMessage,
    Parcel,
    PaymentMethodMapping,
    Shipment,
    ShipmentLine,
    ShippingMode,
    Shop,
    StatusMapping,
    Transaction,
)
from web.models.enums import (
    CommentVisibility,
    CommercialState,
    FulfilmentState,
    InboxState,
    LineKind,
    Milestone,
    OutboxState,
    PaymentState,
    Platform,
    ShipmentState,
    ShopStatusMeaning,
    TransactionKind,
    TransactionSource,
    TransactionStatus,
)
from web.services import mapping_issues, outbox
from web.services.errors import ValidationFailed
from web.services.order_state import derive_payment_state, milestone
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor, record_event

SHOPIFY_KEY = "demo-shopify"
PRESTA_KEY = "demo-presta"
DEMO_SHOP_KEYS = (SHOPIFY_KEY, PRESTA_KEY)
MAX_ORDERS = 5000
HISTORY_DAYS = 60
FLUSH_EVERY = 100

PARIS = ZoneInfo("Europe/Paris")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
VAT_STANDARD = Decimal("20")
VAT_FOOD = Decimal("5.5")


def _money(value: Decimal | str | int) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _split_gross(gross: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """Split a tax-inclusive amount into net and tax that add up exactly."""
    net = _money(gross * 100 / (100 + rate))
    return net, gross - net


@dataclass
class DemoSummary:
    """How many rows of each kind the demo created."""

    shops: int = 0
    shipping_modes: int = 0
    carrier_mappings: int = 0
    customers: int = 0
    orders: int = 0
    order_lines: int = 0
    transactions: int = 0
    shipments: int = 0
    parcels: int = 0
    comments: int = 0
    order_events: int = 0
    inbox_events: int = 0


# --- Identifiers ---------------------------------------------------------------------------


def french_vat_number(siren: str) -> str:
    """Return the FR intra-community VAT number of a SIREN (python-stdnum only validates)."""
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def _siren(body: str) -> str:
    """Complete an 8-digit body into a SIREN (Luhn check digit)."""
    return body + luhn.calc_check_digit(body)


def _ups_check_char(body15: str) -> str:
    values = [int(c) if c.isdigit() else (ord(c) - 3) % 10 for c in body15]
    total = sum(v * (2 if i % 2 else 1) for i, v in enumerate(values))
    return str((10 - total % 10) % 10)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _letters(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(count))


def tracking_number(rng: random.Random, mode_code: str) -> str:
    """Draw a tracking number in the carrier's usual shape (carriers.md, table C)."""
    if mode_code == "colissimo":
        return rng.choice(("6A", "6C")) + _digits(rng, 11)
    if mode_code == "colissimo_relais":
        return "6H" + _digits(rng, 11)
    if mode_code == "chronopost":
        return rng.choice(("XW", "XY", "XR")) + _digits(rng, 9) + "FR"
    if mode_code == "mondial_relay":
        return _digits(rng, 8)
    if mode_code == "dpd":
        return "250" + _digits(rng, 11)
    if mode_code == "gls":
        return _digits(rng, 11)
    if mode_code == "ups":
        body = "0W8F47" + rng.choice(("68", "11")) + _digits(rng, 7)
        return "1Z" + body + _ups_check_char(body)
    raise ValueError(f"no tracking format for {mode_code}")


# --- Reference data ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rate:
    label: str
    mode: str | None  # None: a label no carrier mapping knows (needs mapping)
    price: Decimal
    weight: int
    free_from: Decimal | None = None


@dataclass(frozen=True)
class _Variant:
    sku: str
    ean: str
    name: str
    options: str
    price: Decimal
    rate: Decimal
    weight_kg: Decimal
    popularity: int


@dataclass(frozen=True)
class _PaymentSpec:
    method: str
    label: str
    online: bool
    source: TransactionSource = TransactionSource.SHOP
    counts: bool = True


def _catalogue(
    prefix: str, sku_prefix: str, products: list[tuple[Any, ...]]
) -> tuple[_Variant, ...]:
    variants: list[_Variant] = []
    for name, code, rate, weight, popularity, options in products:
        for option, suffix, price in options:
            body = f"{prefix}{len(variants) + 1:03d}"
            variants.append(
                _Variant(
                    sku=f"{sku_prefix}-{code}-{suffix}" if suffix else f"{sku_prefix}-{code}",
                    ean=body + ean.calc_check_digit(body),
                    name=name,
                    options=option,
                    price=Decimal(price),
                    rate=rate,
                    weight_kg=Decimal(weight),
                    popularity=popularity,
                )
            )
    return tuple(variants)


# Tables below are data, kept one record per line.
# fmt: off



_SCENTS = [("Parfum : Figue", "FIG"), ("Parfum : Cèdre", "CED"),
           ("Parfum : Fleur d'oranger", "ORA"), ("Parfum : Lavande", "LAV")]

# (name, SKU code, VAT rate, weight kg, popularity, [(options, SKU suffix, price incl. VAT)])
SHOPIFY_CATALOGUE = _catalogue("376012345", "AL", [
    ("Bougie parfumée 180 g", "BOU180", VAT_STANDARD, "0.35", 10,
     [(label, code, "29.00") for label, code in _SCENTS]),
    ("Bougie parfumée 400 g", "BOU400", VAT_STANDARD, "0.70", 6,
     [(label, code, "49.00") for label, code in _SCENTS]),
    ("Coffret 3 mini-bougies", "COF3", VAT_STANDARD, "0.45", 5, [("", "", "35.00")]),
    ("Recharge de cire de soja 180 g", "RECH", VAT_STANDARD, "0.25", 3,
     [("Parfum : Figue", "FIG", "22.00"), ("Parfum : Cèdre", "CED", "22.00")]),
    ("Lampe à poser en céramique « Dune »", "LDUNE", VAT_STANDARD, "2.40", 3,
     [("Couleur : Sable", "SAB", "129.00"), ("Couleur : Terracotta", "TER", "129.00")]),
    ("Lampe baladeuse en laiton", "LBAL", VAT_STANDARD, "1.10", 2, [("", "", "89.00")]),
    ("Abat-jour en lin Ø 30 cm", "ABJ30", VAT_STANDARD, "0.60", 2,
     [("Couleur : Naturel", "NAT", "45.00"), ("Couleur : Ocre", "OCR", "45.00")]),
    ("Vase en grès émaillé", "VASE", VAT_STANDARD, "0.90", 4,
     [("Taille : S", "S", "38.00"), ("Taille : M", "M", "54.00")]),
    ("Tasses en grès (lot de 2)", "TAS2", VAT_STANDARD, "0.55", 4,
     [("Émail : Céladon", "CEL", "32.00"), ("Émail : Blanc cassé", "BLC", "32.00")]),
    ("Assiette plate en faïence", "ASS", VAT_STANDARD, "0.50", 3, [("", "", "24.50")]),
    ("Mouchette en laiton", "MOUCH", VAT_STANDARD, "0.10", 2, [("", "", "18.90")]),
    ("Éteignoir à bougie", "ETEI", VAT_STANDARD, "0.08", 2, [("", "", "16.00")]),
])

PRESTA_CATALOGUE = _catalogue("376098765", "BE", [
    ("Confiture extra abricot du Roussillon 340 g", "CONF-ABR", VAT_FOOD, "0.55", 8,
     [("", "", "6.90")]),
    ("Confiture de figue violette 340 g", "CONF-FIG", VAT_FOOD, "0.55", 6, [("", "", "7.20")]),
    ("Marmelade d'oranges amères 320 g", "MARM", VAT_FOOD, "0.52", 4, [("", "", "6.50")]),
    ("Huile d'olive vierge extra AOP Nyons", "HO-NYONS", VAT_FOOD, "0.95", 6,
     [("Contenance : 50 cl", "50", "18.50"), ("Contenance : 1 L", "100", "32.00")]),
    ("Huile d'olive de la Vallée des Baux", "HO-BAUX", VAT_FOOD, "0.95", 3,
     [("Contenance : 50 cl", "50", "21.00")]),
    ("Thé vert Sencha bio", "THE-SEN", VAT_FOOD, "0.12", 5,
     [("Conditionnement : Vrac 100 g", "100", "12.90"),
      ("Conditionnement : Boîte 200 g", "200", "23.50")]),
    ("Thé noir Earl Grey aux fleurs de bleuet 100 g", "THE-EG", VAT_FOOD, "0.12", 5,
     [("", "", "11.50")]),
    ("Rooibos vanille 100 g", "ROOI", VAT_FOOD, "0.12", 3, [("", "", "9.80")]),
    ("Coffret dégustation 4 thés", "COF-THE", VAT_FOOD, "0.50", 3, [("", "", "29.00")]),
    ("Tablette chocolat noir 70 % Madagascar 100 g", "CHOC-MAD", VAT_FOOD, "0.12", 7,
     [("", "", "5.90")]),
    ("Pâte à tartiner noisettes du Piémont 250 g", "PAT-NOI", VAT_FOOD, "0.30", 4,
     [("", "", "9.40")]),
    ("Fleur de sel de Guérande 125 g", "SEL", VAT_FOOD, "0.16", 4, [("", "", "6.20")]),
    ("Miel de lavande 250 g", "MIEL-LAV", VAT_FOOD, "0.36", 4, [("", "", "11.00")]),
    # Chocolate confectionery is taxed at the standard rate in France, tablets are not.
    ("Ballotin de pralinés 250 g", "BALL", VAT_STANDARD, "0.32", 3, [("", "", "24.00")]),
    ("Couteau à tartiner en olivier", "COUT", VAT_STANDARD, "0.05", 2, [("", "", "14.50")]),
])

GIFT_WRAP = {
    SHOPIFY_KEY: ("AL-EMB-CADEAU", "Emballage cadeau", Decimal("4.90")),
    PRESTA_KEY: ("BE-EMB-CADEAU", "Emballage cadeau kraft", Decimal("3.50")),
}

SHOPIFY_RATES = (
    _Rate("Colissimo - Livraison à domicile", "colissimo", Decimal("6.90"), 32, Decimal("79")),
    _Rate("Colissimo - Point Retrait", "colissimo_relais", Decimal("4.90"), 14, Decimal("79")),
    _Rate("Mondial Relay - Point Relais", "mondial_relay", Decimal("3.90"), 26, Decimal("79")),
    _Rate("Chronopost - Livraison express 24h", "chronopost", Decimal("12.90"), 10),
    _Rate("DPD Predict", "dpd", Decimal("7.50"), 9),
    _Rate("UPS Standard", "ups", Decimal("14.90"), 6),
)
PRESTA_RATES = (
    _Rate("Colissimo Domicile sans signature", "colissimo", Decimal("7.40"), 30, Decimal("60")),
    _Rate("Colissimo Point Retrait", "colissimo_relais", Decimal("5.40"), 15, Decimal("60")),
    _Rate("Mondial Relay Point Relais", "mondial_relay", Decimal("4.50"), 28, Decimal("60")),
    _Rate("Chronopost Chrono 13", "chronopost", Decimal("13.90"), 8),
    _Rate("GLS Chez vous +", "gls", Decimal("8.20"), 10),
    _Rate("DPD Predict", "dpd", Decimal("7.90"), 6),
)
UNKNOWN_RATES = {
    SHOPIFY_KEY: (
        _Rate("Coursier à vélo (Paris intra-muros)", None, Decimal("9.90"), 1),
        _Rate("Colissimo International - Outre-mer", None, Decimal("24.90"), 1),
    ),
    PRESTA_KEY: (
        _Rate("Retrait à l'épicerie (Lyon 2e)", None, ZERO, 1),
        _Rate("Chronofresh - Livraison réfrigérée", None, Decimal("19.90"), 1),
    ),
}

SHOPIFY_PAYMENTS = (
    _PaymentSpec("shopify_payments", "Shopify Payments (carte bancaire)", True),
    _PaymentSpec("paypal", "PayPal", True),
    _PaymentSpec("manual", "Virement bancaire", False, TransactionSource.BANK_TRANSFER),
)
PRESTA_PAYMENTS = (
    _PaymentSpec("Carte bancaire", "Carte bancaire", True),
    _PaymentSpec("PayPal", "PayPal", True),
    _PaymentSpec("Virement bancaire", "Virement bancaire", False, TransactionSource.BANK_TRANSFER),
    _PaymentSpec("Chèque", "Chèque", False, TransactionSource.CHEQUE),
    _PaymentSpec("Commande gratuite", "Commande gratuite (total nul)", False, counts=False),
)
ONLINE_WEIGHTS = {"shopify_payments": 78, "paypal": 22, "Carte bancaire": 75, "PayPal": 25}
OFFLINE_WEIGHTS = {"manual": 1, "Virement bancaire": 6, "Chèque": 4}
FREE_METHOD = {SHOPIFY_KEY: "manual", PRESTA_KEY: "Commande gratuite"}

_M = ShopStatusMeaning
# Shopify orders carry their `financial_status` as the shop status.
SHOPIFY_STATUSES = (
    ("pending", "En attente de paiement", _M.AWAITING_PAYMENT),
    ("authorized", "Autorisé", _M.AWAITING_PAYMENT),
    ("partially_paid", "Partiellement payé", _M.AWAITING_PAYMENT),
    ("paid", "Payé", _M.PAID),
    ("partially_refunded", "Partiellement remboursé", _M.IGNORE),
    ("refunded", "Remboursé", _M.REFUNDED),
    ("voided", "Annulé", _M.CANCELLED),
)
# PrestaShop default order_states in French, labelled with their id and configuration key
# (shop-platform-apis.md §3.4).
PRESTA_STATUSES = (
    ("En attente du paiement par chèque", "1 · PS_OS_CHEQUE", _M.AWAITING_PAYMENT),
    ("Paiement accepté", "2 · PS_OS_PAYMENT", _M.PAID),
    ("En cours de préparation", "3 · PS_OS_PREPARATION", _M.PROCESSING),
    ("Expédié", "4 · PS_OS_SHIPPING", _M.SHIPPED),
    ("Livré", "5 · PS_OS_DELIVERED", _M.COMPLETED),
    ("Annulé", "6 · PS_OS_CANCELED", _M.CANCELLED),
    ("Remboursé", "7 · PS_OS_REFUND", _M.REFUNDED),
    ("Erreur de paiement", "8 · PS_OS_ERROR", _M.ON_HOLD),
    ("En attente de réapprovisionnement (payé)", "9 · PS_OS_OUTOFSTOCK_PAID", _M.PAID),
    ("En attente de virement bancaire", "10 · PS_OS_BANKWIRE", _M.AWAITING_PAYMENT),
    ("Paiement à distance accepté", "11 · PS_OS_WS_PAYMENT", _M.PAID),
    ("En attente de réapprovisionnement (non payé)", "12 · PS_OS_OUTOFSTOCK_UNPAID",
     _M.AWAITING_PAYMENT),
    ("En attente de validation du paiement à la livraison", "13 · PS_OS_COD_VALIDATION",
     _M.AWAITING_PAYMENT),
)
SHOPIFY_MILESTONES = {
    Milestone.CANCELLED: ("cancelled", True),
    Milestone.COMPLETED: ("fulfilled", True),
    Milestone.PARTIALLY_SHIPPED: ("partial", True),
    Milestone.PROCESSING: ("in_progress", True),
    Milestone.VALIDATED: ("open", False),
    Milestone.PAID: ("paid", False),
    Milestone.PARTIALLY_PAID: ("partially_paid", False),
}
PRESTA_MILESTONES = {
    Milestone.CANCELLED: ("Annulé", True),
    Milestone.COMPLETED: ("Expédié", True),
    Milestone.PARTIALLY_SHIPPED: ("En cours de préparation", False),
    Milestone.PROCESSING: ("En cours de préparation", True),
    Milestone.VALIDATED: ("Paiement accepté", False),
    Milestone.PAID: ("Paiement accepté", True),
    Milestone.PARTIALLY_PAID: ("En attente de virement bancaire", False),
}

FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Emma", "Inès", "Sarah", "Julie", "Claire", "Anaïs",
    "Élodie", "Margaux", "Pauline", "Sophie", "Hélène", "Nathalie", "Isabelle", "Aurélie",
    "Lucas", "Hugo", "Thomas", "Nicolas", "Julien", "Maxime", "Antoine", "Louis", "Théo",
    "Mathieu", "Olivier", "Sébastien", "François", "Jérôme", "Benoît", "Raphaël", "Karim",
    "Yasmine", "Amandine", "Gaëlle", "Noémie", "Baptiste",
)
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèbvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc",
    "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Le Gall", "Benali",
)
COMPANIES = (
    "Maison Durand SARL", "Hôtel du Vieux Port", "Les Jardins de Provence SAS",
    "Concept store Oblique", "Restaurant La Table de Marie", "Fleurs & Bougies SARL",
    "Galerie Atelier Douze", "Épicerie Le Comptoir d'Anaïs", "Gîtes des Trois Chênes",
    "Cabinet Lefort & Associés",
)
CITIES = (
    ("Paris", "75011"), ("Paris", "75015"), ("Paris", "75018"), ("Lyon", "69003"),
    ("Lyon", "69007"), ("Marseille", "13006"), ("Bordeaux", "33000"), ("Toulouse", "31000"),
    ("Nantes", "44000"), ("Lille", "59000"), ("Strasbourg", "67000"), ("Montpellier", "34000"),
    ("Rennes", "35000"), ("Nice", "06000"), ("Grenoble", "38000"), ("Dijon", "21000"),
    ("Angers", "49000"), ("Tours", "37000"), ("Annecy", "74000"), ("Brest", "29200"),
    ("Reims", "51100"), ("Clermont-Ferrand", "63000"), ("Aix-en-Provence", "13100"),
    ("La Rochelle", "17000"), ("Rouen", "76000"), ("Metz", "57000"), ("Caen", "14000"),
    ("Limoges", "87000"), ("Poitiers", "86000"), ("Besançon", "25000"), ("Avignon", "84000"),
    ("Pau", "64000"), ("Bayonne", "64100"), ("Nancy", "54000"), ("Orléans", "45000"),
    ("Le Mans", "72000"), ("Perpignan", "66000"), ("Saint-Malo", "35400"),
    ("Colmar", "68000"), ("Chambéry", "73000"), ("Vannes", "56000"), ("Arles", "13200"),
)
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Gambetta",
    "rue des Lilas", "place du Marché", "rue Pasteur", "allée des Tilleuls", "rue du Moulin",
    "chemin des Vignes", "rue Saint-Michel", "avenue de la Gare", "rue Nationale",
    "impasse des Acacias", "rue du Général de Gaulle", "quai des Bateliers", "rue Émile Zola",
)
ADDRESS2 = ("Bâtiment B", "Appartement 12", "3e étage gauche", "Résidence Les Pins", "Porte 4")
RELAY_NAMES = (
    "Tabac Presse Le Balto", "Carrefour City", "Pressing du Centre", "Librairie des Halles",
    "Fleuriste Les Quatre Saisons", "Cordonnerie Express", "Épicerie du Coin",
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
# ARCEP ranges reserved for fiction: 06 39 98, 01 99 00, 04 65 71, 05 36 49 (+ 4 digits).
PHONE_PREFIXES = ("+3363998", "+3363998", "+3363998", "+3319900", "+3346571", "+3353649")

BUYER_NOTES = (
    "Merci de laisser le colis à la gardienne si je suis absente.",
    "C'est un cadeau : merci de ne pas glisser la facture dans le colis.",
    "Digicode 4512B, 3e étage gauche.",
    "Livraison possible uniquement après 18 h, merci !",
    "Pourriez-vous ajouter un petit mot « Joyeux anniversaire Maman » ?",
)
INTERNAL_COMMENTS = (
    "Cliente fidèle : glisser un échantillon dans le colis.",
    "Céramique fragile, double calage papier kraft.",
    "Client appelé pour confirmer l'adresse, tout est bon.",
    "Attention, ancien colis perdu avec ce transporteur : bien vérifier l'étiquette.",
    "Demande de facture au nom de la société, voir adresse de facturation.",
)
CUSTOMER_COMMENTS = (
    "Bonjour, votre commande est en cours de préparation et partira demain. Belle journée !",
    "Votre colis a bien été remis au transporteur, vous recevrez le suivi par e-mail.",
    "Merci pour votre commande ! Nous avons ajouté une petite surprise dans le colis.",
    "Bonjour, un article arrive demain chez nous ; nous expédions l'ensemble dès réception.",
)
B2B_COMMENT = ("Client professionnel : validé sans attendre le paiement "
               "(virement à 30 jours fin de mois).")
HOLD_REASONS = (
    "Adresse de livraison incomplète : appel client en cours.",
    "Contrôle anti-fraude : adresses de facturation et de livraison différentes, montant élevé.",
    "Le client demande à grouper avec sa prochaine commande.",
)
CANCEL_REASON_UNPAID_LATE = "Virement non reçu sous 10 jours."
CANCEL_REASONS_UNPAID = (
    "Annulée à la demande du client (doublon de commande).",
    "Annulée à la demande de la cliente avant paiement.",
)
CANCEL_REASONS_REFUNDED = (
    "Rupture de stock sur un article, client remboursé.",
    "Annulée à la demande du client, remboursement intégral.",
    "Adresse de livraison hors zone desservie.",
)
PERCENT_CODES = {
    SHOPIFY_KEY: (("BIENVENUE10", 10), ("LUMIERE15", 15), ("NEWSLETTER5", 5)),
    PRESTA_KEY: (("BIENVENUE10", 10), ("GOURMAND15", 15), ("NOEL5", 5)),
}
FREE_SHIPPING_CODE = "LIVRAISONOFFERTE"
FREE_ORDER_CODE = "PRESSE-OFFERT"

WEEKDAY_WEIGHTS = (1.15, 1.0, 0.95, 0.95, 0.9, 0.75, 1.2)  # Monday first
HOUR_WEIGHTS = (  # Paris time: lunch break and evening peaks
    0.3, 0.15, 0.1, 0.05, 0.05, 0.1, 0.3, 0.7, 1.0, 1.2, 1.3, 1.4,
    1.6, 1.5, 1.3, 1.2, 1.2, 1.3, 1.5, 1.8, 2.2, 2.3, 1.6, 0.8,
)
# fmt: on


# --- Scenarios -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scenario:
    """One coherent combination of the three state axes, and how old it may plausibly be."""

    name: str
    weight: float
    min_age_h: float
    max_age_h: float
    pay: str = "online"  # online | offline_none | offline_partial | free
    validation: str | None = "auto"  # auto | manual | None
    stage: int = 0  # 0 none, 1 in preparation, 2 partially shipped, 3 shipped, 4 delivered
    closed: bool = False
    refund: str | None = None  # partial | full
    cancel: str | None = None  # unpaid | refunded
    hold: bool = False
    mapping: bool = False
    minimum: int = 1
    min_lines: int = 1


_D = 24.0
# fmt: off
SCENARIOS: tuple[_Scenario, ...] = (
    _Scenario("awaiting_payment", 6, 0, 12 * _D, pay="offline_none", validation=None, minimum=2),
    _Scenario("partially_paid", 1.5, 30, 15 * _D, pay="offline_partial", validation=None,
              minimum=2),
    _Scenario("validated_unpaid", 0.8, 2, 20 * _D, pay="offline_none", validation="manual"),
    _Scenario("ready", 20, 0, 6 * _D, minimum=3),
    _Scenario("zero_total", 0.8, 0, 5 * _D, pay="free", minimum=2),
    _Scenario("on_hold", 2, 0, 10 * _D, hold=True, minimum=2),
    _Scenario("needs_mapping", 1, 0, 5 * _D, mapping=True, minimum=3),
    _Scenario("in_preparation", 8, 4, 3 * _D, stage=1, minimum=2),
    _Scenario("partially_shipped", 3, 30, 14 * _D, stage=2, minimum=2, min_lines=2),
    _Scenario("shipped", 14, 20, 6 * _D, stage=3, minimum=3),
    _Scenario("delivered", 22, 4 * _D, 25 * _D, stage=4, minimum=3),
    _Scenario("partially_refunded", 1.5, 7 * _D, 60 * _D, stage=4, refund="partial",
              min_lines=2),
    _Scenario("closed", 25, 14 * _D, 60 * _D, stage=4, closed=True, minimum=3),
    _Scenario("returned", 1, 20 * _D, 60 * _D, stage=4, closed=True, refund="full"),
    _Scenario("cancelled_unpaid", 2, 24, 60 * _D, pay="offline_none", validation=None,
              cancel="unpaid", minimum=2),
    _Scenario("cancelled_refunded", 2.5, 12, 60 * _D, cancel="refunded", minimum=2),
)
# fmt: on


# --- Builder -------------------------------------------------------------------------------


@dataclass
class _Person:
    first_name: str
    last_name: str
    email: str
    phone: str
    company: str
    vat_id: str
    address1: str
    address2: str
    postcode: str
    city: str
    customer: Customer | None = None


@dataclass
class _ShopCtx:
    shop: Shop
    rates: tuple[_Rate, ...]
    catalogue: tuple[_Variant, ...]
    payments: dict[str, _PaymentSpec]
    milestones: dict[Milestone, tuple[str, bool]]
    next_number: int
    next_external: int
    next_line_external: int
    next_customer_external: int
    links: dict[str, str] = field(default_factory=dict)
    used_refs: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.shop.key

    @property
    def is_shopify(self) -> bool:
        return self.shop.platform == Platform.SHOPIFY


class _Clock:
    """Hands out increasing timestamps after an order was placed, never past the horizon."""

    def __init__(self, start: dt.datetime, limit: dt.datetime, rng: random.Random) -> None:
        self.now = start
        self.limit = limit
        self.rng = rng

    def after(self, delta: dt.timedelta, *, business: bool = False) -> dt.datetime:
        """Return the moment `delta` later (moved into working hours for staff actions)."""
        candidate = (self.now + delta).replace(microsecond=0)
        if business:
            candidate = _business_hours(candidate, self.rng)
        # Squeezed against the horizon, later steps are one second apart rather than future.
        candidate = min(candidate, self.limit)
        self.now = max(candidate, self.now + dt.timedelta(seconds=1))
        return self.now


def _business_hours(moment: dt.datetime, rng: random.Random) -> dt.datetime:
    """Move a staff action into the next weekday 9:00-18:00 (Paris)."""
    local = moment.astimezone(PARIS)
    if local.weekday() < 5 and 9 <= local.hour < 18:
        return moment
    day = local.date()
    if local.hour >= 18:
        day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(9), PARIS) + dt.timedelta(minutes=rng.randint(0, 150))
    return start.astimezone(dt.UTC)


class _DemoBuilder:
    def __init__(self, session: Session, rng: random.Random, today: dt.date) -> None:
        self.session = session
        self.rng = rng
        self.today = today
        self.horizon = dt.datetime.combine(today, dt.time(0), PARIS).astimezone(dt.UTC)
        self.limit = self.horizon - dt.timedelta(minutes=10)
        self.summary = DemoSummary()
        self.modes: dict[str, ShippingMode] = {}
        self.shipment_seq = 0
        self.emails: set[str] = set()
        self.existing_customers: dict[str, Customer] = {}

    # -- setup ------------------------------------------------------------------------

    def run(self, count: int) -> DemoSummary:
        self._shipping_modes()
        shopify, presta = self._shops()
        people = self._people(max(10, round(count * 0.55)))
        emails = [person.email for person in people]
        self.existing_customers = {
            customer.email: customer
            for customer in self.session.scalars(select(Customer).where(Customer.email.in_(emails)))
            if customer.email
        }
        self.shipment_seq = self._last_shipment_number()
        plans = self._plans(count, (shopify, presta), people)
        orders: list[Order] = []
        for index, (ctx, placed_at, scenario, person) in enumerate(plans):
            orders.append(self._order(ctx, placed_at, scenario, person))
            if (index + 1) % FLUSH_EVERY == 0:
                self.session.flush()
        self.session.flush()
        self._inbox(orders, shopify, presta)
        self.session.flush()
        self.summary.orders = len(orders)
        return self.summary

    def _last_shipment_number(self) -> int:
        numbers = self.session.scalars(select(Shipment.number).where(Shipment.number.like("EXP-%")))
        return max((int(n[4:]) for n in numbers if n[4:].isdigit()), default=0)

    def _shipping_modes(self) -> None:
        self.modes.update(ensure_default_shipping_modes(self.session))
        self.summary.shipping_modes = len(self.modes)

    def _shops(self) -> tuple[_ShopCtx, _ShopCtx]:
        rng = self.rng
        created = self.horizon - dt.timedelta(days=HISTORY_DAYS + 5)
        shopify = Shop(
            key=SHOPIFY_KEY,
            platform=Platform.SHOPIFY,
            name="Atelier Lumière (Shopify)",
            base_url="https://atelier-lumiere.myshopify.com",
            api_key="shpat_demo_" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
            api_secret=None,
            webhook_secret="demo-whsec-" + _letters(rng, 24).lower(),
            import_from=self.today - dt.timedelta(days=HISTORY_DAYS + 1),
            # Demo shops point at shops that do not exist: they never sync.
            is_active=False,
            created_at=created,
        )
        presta = Shop(
            key=PRESTA_KEY,
            platform=Platform.PRESTASHOP,
            name="La Belle Épicerie (PrestaShop)",
            base_url="https://boutique.labelleepicerie.fr",
            api_key="DEMO" + _letters(rng, 28),
            api_secret=None,
            webhook_secret="demo-whsec-" + _letters(rng, 24).lower(),
            import_from=self.today - dt.timedelta(days=HISTORY_DAYS + 1),
            poll_interval_seconds=600,
            is_active=False,
            created_at=created,
        )
        self.session.add_all([shopify, presta])
        self.session.flush()
        for shop, statuses, milestones, payments, rates in (
            (shopify, SHOPIFY_STATUSES, SHOPIFY_MILESTONES, SHOPIFY_PAYMENTS, SHOPIFY_RATES),
            (presta, PRESTA_STATUSES, PRESTA_MILESTONES, PRESTA_PAYMENTS, PRESTA_RATES),
        ):
            shop.status_mappings = [
                StatusMapping(shop_status=status, label=label, meaning=meaning)
                for status, label, meaning in statuses
            ]
            shop.milestone_mappings = [
                MilestoneMapping(milestone=m, shop_status=status, enabled=enabled)
                for m, (status, enabled) in milestones.items()
            ]
            shop.payment_mappings = [
                PaymentMethodMapping(
                    shop_method=p.method, label=p.label, counts_as_payment=p.counts
                )
                for p in payments
            ]
            shop.carrier_mappings = [
                CarrierMapping(shop_label=r.label, shipping_mode=self.modes[r.mode])
                for r in rates
                if r.mode is not None
            ]
            self.summary.carrier_mappings += len(shop.carrier_mappings)
        self.summary.shops = 2
        return (
            _ShopCtx(
                shop=shopify,
                rates=SHOPIFY_RATES,
                catalogue=SHOPIFY_CATALOGUE,
                payments={p.method: p for p in SHOPIFY_PAYMENTS},
                milestones=SHOPIFY_MILESTONES,
                next_number=1001,
                next_external=5678901234567000000 + rng.randint(0, 99999) * 1000,
                next_line_external=1398765432109000000 + rng.randint(0, 99999) * 1000,
                next_customer_external=7390123456789000000 + rng.randint(0, 99999) * 1000,
            ),
            _ShopCtx(
                shop=presta,
                rates=PRESTA_RATES,
                catalogue=PRESTA_CATALOGUE,
                payments={p.method: p for p in PRESTA_PAYMENTS},
                milestones=PRESTA_MILESTONES,
                next_number=0,
                next_external=1840 + rng.randint(0, 200),
                next_line_external=4120 + rng.randint(0, 500),
                next_customer_external=312 + rng.randint(0, 100),
            ),
        )

    # -- customers --------------------------------------------------------------------

    def _people(self, size: int) -> list[_Person]:
        rng = self.rng
        people = []
        for index in range(size):
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            is_company = index % 9 == 0
            company = COMPANIES[(index // 9) % len(COMPANIES)] if is_company else ""
            vat_id = ""
            if is_company:
                vat_id = french_vat_number(_siren(str(rng.randint(30000000, 99999999))))
            city, postcode = rng.choice(CITIES)
            people.append(
                _Person(
                    first_name=first,
                    last_name=last,
                    email=self._email(first, last),
                    phone=rng.choice(PHONE_PREFIXES) + _digits(rng, 4),
                    company=company,
                    vat_id=vat_id,
                    address1=f"{rng.randint(1, 148)} {rng.choice(STREETS)}",
                    address2=rng.choice(ADDRESS2) if rng.random() < 0.2 else "",
                    postcode=postcode,
                    city=city,
                )
            )
        return people

    def _email(self, first: str, last: str) -> str:
        def fold(text: str) -> str:
            plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
            return plain.lower().replace(" ", "")

        base = f"{fold(first)}.{fold(last)}"
        domain = self.rng.choice(EMAIL_DOMAINS)
        email = f"{base}@{domain}"
        suffix = 2
        while email in self.emails:
            email = f"{base}{suffix}@{domain}"
            suffix += 1
        self.emails.add(email)
        return email

    def _customer(self, ctx: _ShopCtx, person: _Person, at: dt.datetime) -> Customer:
        if person.customer is None:
            found = self.existing_customers.get(person.email)
            if found is None:
                found = Customer(
                    email=person.email,
                    first_name=person.first_name,
                    last_name=person.last_name,
                    company=person.company,
                    phone=person.phone,
                    created_at=at,
                )
                self.session.add(found)
                self.summary.customers += 1
            person.customer = found
        if person.email not in ctx.links:
            external = str(ctx.next_customer_external)
            step = self.rng.randint(1000, 999999) if ctx.is_shopify else self.rng.randint(1, 9)
            ctx.next_customer_external += step
            ctx.links[person.email] = external
            person.customer.shop_links.append(
                CustomerShopLink(shop_id=ctx.shop.id, external_id=external)
            )
        return person.customer

    # -- planning ---------------------------------------------------------------------

    def _plans(
        self, count: int, shops: tuple[_ShopCtx, _ShopCtx], people: list[_Person]
    ) -> list[tuple[_ShopCtx, dt.datetime, _Scenario, _Person]]:
        rng = self.rng
        days = [self.today - dt.timedelta(days=offset) for offset in range(1, HISTORY_DAYS + 1)]
        day_weights = [
            WEEKDAY_WEIGHTS[day.weekday()] * (0.6 + 0.8 * (HISTORY_DAYS - offset) / HISTORY_DAYS)
            for offset, day in enumerate(days, start=1)
        ]
        placed: list[dt.datetime] = []
        for day in rng.choices(days, weights=day_weights, k=count):
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            local = dt.datetime.combine(
                day, dt.time(hour, rng.randint(0, 59), rng.randint(0, 59)), PARIS
            )
            placed.append(local.astimezone(dt.UTC))
        placed.sort()

        ages = [(self.horizon - at).total_seconds() / 3600 for at in placed]
        chosen = [self._pick_scenario(age) for age in ages]
        self._ensure_coverage(chosen, ages)

        loyal = max(3, len(people) // 6)
        plans = []
        for at, scenario in zip(placed, chosen, strict=True):
            ctx = shops[0] if rng.random() < 0.55 else shops[1]
            if scenario.validation == "manual":
                person = rng.choice([p for p in people if p.company])
            elif rng.random() < 0.3:
                person = people[rng.randrange(loyal)]
            else:
                person = rng.choice(people)
            plans.append((ctx, at, scenario, person))
        return plans

    def _pick_scenario(self, age_h: float) -> _Scenario:
        fitting = [s for s in SCENARIOS if s.min_age_h <= age_h <= s.max_age_h]
        return self.rng.choices(fitting, weights=[s.weight for s in fitting])[0]

    def _ensure_coverage(self, chosen: list[_Scenario], ages: list[float]) -> None:
        """Reassign a few orders so every scenario appears at least its minimum times."""
        counts = Counter(s.name for s in chosen)
        for scenario in SCENARIOS:
            while counts[scenario.name] < scenario.minimum:
                candidates = [
                    i
                    for i, (current, age) in enumerate(zip(chosen, ages, strict=True))
                    if scenario.min_age_h <= age <= scenario.max_age_h
                    and counts[current.name] > current.minimum
                ]
                if not candidates:
                    break
                index = self.rng.choice(candidates)
                counts[chosen[index].name] -= 1
                chosen[index] = scenario
                counts[scenario.name] += 1

    # -- one order --------------------------------------------------------------------

    def _order(
        self, ctx: _ShopCtx, placed_at: dt.datetime, sc: _Scenario, person: _Person
    ) -> Order:
        rng = self.rng
        clock = _Clock(placed_at, self.limit, rng)
        shop_actor = Actor.shop(ctx.shop.name)
        system = Actor.system()
        received = clock.after(
            dt.timedelta(seconds=rng.randint(15, 90))
            if ctx.is_shopify
            else dt.timedelta(seconds=rng.randint(30, 600))
        )

        # Shipping mode and payment method.
        if sc.mapping:
            rate = rng.choice(UNKNOWN_RATES[ctx.key])
        else:
            rate = rng.choices(ctx.rates, weights=[r.weight for r in ctx.rates])[0]
        mode = self.modes[rate.mode] if rate.mode else None
        age_h = (self.horizon - placed_at).total_seconds() / 3600
        if sc.pay == "free":
            payment = ctx.payments[FREE_METHOD[ctx.key]]
        elif sc.pay.startswith("offline") or (
            sc.pay == "online" and age_h > 96 and sc.cancel is None and rng.random() < 0.12
        ):
            offline = [m for m in ctx.payments.values() if m.method in OFFLINE_WEIGHTS]
            payment = rng.choices(offline, weights=[OFFLINE_WEIGHTS[m.method] for m in offline])[0]
        else:
            online = [m for m in ctx.payments.values() if m.online]
            payment = rng.choices(online, weights=[ONLINE_WEIGHTS[m.method] for m in online])[0]

        # Identity and addresses.
        customer = self._customer(ctx, person, placed_at)
        billing = self._address(person)
        shipping = dict(billing)
        if rng.random() < 0.1:
            shipping.update(
                first_name=rng.choice(FIRST_NAMES),
                last_name=person.last_name if rng.random() < 0.5 else rng.choice(LAST_NAMES),
                company="",
                vat_id="",
            )
        if mode is not None and mode.is_relay_point:
            shipping.update(
                company=rng.choice(RELAY_NAMES),
                address1=f"{rng.randint(1, 90)} {rng.choice(STREETS)}",
                address2="",
                relay_point_id=(
                    f"FR-{_digits(rng, 6)}" if mode.code == "mondial_relay" else _digits(rng, 6)
                ),
            )

        order = Order(
            shop=ctx.shop,
            customer=customer,
            email=person.email,
            placed_at=placed_at,
            created_at=received,
            currency="EUR",
            prices_include_tax=True,
            billing_address=billing,
            shipping_address=shipping,
            shipping_label=rate.label,
            shipping_mode=mode,
            payment_method=payment.method,
            buyer_note=rng.choice(BUYER_NOTES) if rng.random() < 0.08 else "",
            marketplace_ref="",
            on_hold=False,
            needs_mapping=False,
            needs_review=False,
            commercial_state=CommercialState.NEW,
            fulfilment_state=FulfilmentState.UNFULFILLED,
            payment_state=PaymentState.UNPAID,
        )
        self._identify(ctx, order)
        self._lines(ctx, order, sc, rate)
        self.summary.order_lines += len(order.lines)

        shop_times = [placed_at]
        events: list[tuple[dt.datetime, Actor, str, dict[str, Any]]] = []

        def event(at: dt.datetime, actor: Actor, kind: str, /, **params: Any) -> None:
            events.append((at, actor, kind, params))

        event(
            received,
            shop_actor,
            "order.received",
            number=order.number,
            shop=ctx.shop.name,
            via="webhook orders/create" if ctx.is_shopify else "poll",
            total=str(order.grand_total),
        )
        if sc.mapping:
            order.needs_mapping = True
            order.mapping_issues = [{"kind": "carrier", "value": rate.label, "label": ""}]
            event(
                clock.after(dt.timedelta(seconds=1)),
                system,
                "order.needs_mapping",
                issues=order.mapping_issues,
            )

        # Payment.
        paid_at: dt.datetime | None = None
        if sc.pay == "online" and payment.online:
            paid_at = self._online_payment(ctx, order, payment, clock, event, shop_actor)
            shop_times.append(paid_at)
        elif sc.pay == "online":
            paid_at = clock.after(dt.timedelta(hours=rng.uniform(20, 70)), business=True)
            self._manual_payment(order, payment, order.grand_total, paid_at, event)
        elif sc.pay == "offline_partial":
            paid_at = clock.after(dt.timedelta(hours=rng.uniform(20, 30)), business=True)
            share = Decimal(rng.choice(("0.30", "0.40", "0.50")))
            self._manual_payment(order, payment, _money(order.grand_total * share), paid_at, event)
        order.payment_state = derive_payment_state(order.grand_total, order.transactions)

        # Validation.
        if sc.validation == "auto":
            at = clock.after(dt.timedelta(seconds=rng.randint(1, 5)))
            order.commercial_state = CommercialState.VALIDATED
            order.validated_at = at
            why = "free" if order.grand_total == ZERO else "paid"
            event(at, system, "order.validated", automatic=True, why=why)
        elif sc.validation == "manual":
            at = clock.after(dt.timedelta(hours=rng.uniform(1, 4)), business=True)
            order.commercial_state = CommercialState.VALIDATED
            order.validated_at = at
            event(
                at,
                system,
                "order.validated",
                note="Business customer, payment at 30 days.",
            )
            self._comment(order, clock.after(dt.timedelta(minutes=1)), B2B_COMMENT, False, event)
        self._push_milestone(ctx, order, clock, event, shop_times)

        if sc.hold:
            at = clock.after(dt.timedelta(minutes=rng.randint(5, 180)), business=True)
            order.on_hold = True
            order.hold_reason = rng.choice(HOLD_REASONS)
            event(
                at,
                system,
                "order.held",
                reason=order.hold_reason,
            )

        if sc.cancel:
            self._cancel(ctx, order, sc, clock, event, shop_actor, shop_times)

        if sc.stage >= 1:
            at = clock.after(dt.timedelta(hours=rng.uniform(0.5, 20)), business=True)
            order.fulfilment_state = FulfilmentState.IN_PREPARATION
            event(at, system, "order.preparation_started")
            self._push_milestone(ctx, order, clock, event, shop_times)
        if sc.stage >= 2:
            self._ship(ctx, order, sc, clock, event, shop_times)
        if sc.refund:
            self._refund(ctx, order, sc, clock, event, shop_actor, shop_times)
        if sc.closed:
            at = clock.after(dt.timedelta(days=rng.uniform(5, 12)), business=True)
            order.commercial_state = CommercialState.CLOSED
            order.closed_at = at
            event(at, system, "order.closed")

        if rng.random() < 0.12 and sc.stage >= 1:
            at = clock.after(dt.timedelta(minutes=rng.randint(10, 600)), business=True)
            visible = rng.random() < 0.5
            text = rng.choice(CUSTOMER_COMMENTS if visible else INTERNAL_COMMENTS)
            self._comment(order, at, text, visible, event)

        order.shop_status = self._shop_status(ctx, order, payment)
        order.shop_updated_at = max(shop_times)
        order.updated_at = max([received, *(e[0] for e in events)])
        self.session.add(order)
        for at, actor, kind, params in events:
            recorded = record_event(self.session, order, actor, kind, params)
            recorded.occurred_at = at
        self.summary.order_events += len(events)
        self.summary.transactions += len(order.transactions)
        return order

    def _identify(self, ctx: _ShopCtx, order: Order) -> None:
        rng = self.rng
        if ctx.is_shopify:
            order.number = f"#{ctx.next_number}"
            ctx.next_number += 1
            order.external_id = str(ctx.next_external)
            ctx.next_external += rng.randint(100000, 9000000)
            return
        order.external_id = str(ctx.next_external)
        ctx.next_external += 1
        reference = _letters(rng, 9)
        while reference in ctx.used_refs:
            reference = _letters(rng, 9)
        ctx.used_refs.add(reference)
        order.number = reference

    def _address(self, person: _Person) -> dict[str, Any]:
        return {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "company": person.company,
            "vat_id": person.vat_id,
            "address1": person.address1,
            "address2": person.address2,
            "postcode": person.postcode,
            "city": person.city,
            "country_code": "FR",
            "country": "France",
            "phone": person.phone,
        }

    def _lines(self, ctx: _ShopCtx, order: Order, sc: _Scenario, rate: _Rate) -> None:
        rng = self.rng
        n_lines = rng.choices((1, 2, 3, 4, 5), weights=(40, 30, 17, 8, 5))[0]
        if sc.pay == "free":
            n_lines = rng.choice((1, 2))
        n_lines = max(n_lines, sc.min_lines)
        variants = rng.sample(ctx.catalogue, k=len(ctx.catalogue))
        variants.sort(key=lambda v: -v.popularity * rng.random())
        percent = 0
        codes: list[dict[str, Any]] = []
        if sc.pay == "free":
            percent = 100
            codes.append({"code": FREE_ORDER_CODE, "type": "percentage", "value": "100"})
        elif rng.random() < 0.18:
            code, percent = rng.choice(PERCENT_CODES[ctx.key])
            codes.append({"code": code, "type": "percentage", "value": str(percent)})

        lines: list[OrderLine] = []
        for position, variant in enumerate(variants[:n_lines], start=1):
            max_qty = 4 if ctx.key == PRESTA_KEY else 2
            quantity = (
                1
                if sc.pay == "free"
                else rng.choices(range(1, max_qty + 1), weights=[70, 20, 7, 3][:max_qty])[0]
            )
            lines.append(
                self._line(
                    ctx,
                    position,
                    variant.sku,
                    variant.ean,
                    variant.name,
                    variant.options,
                    quantity,
                    variant.price,
                    variant.rate,
                    percent,
                    LineKind.PRODUCT,
                )
            )
        if sc.stage == 2 and sum(line.quantity for line in lines) < 2:
            lines[0] = self._line(
                ctx,
                1,
                lines[0].sku,
                lines[0].ean,
                lines[0].name,
                lines[0].options,
                2,
                lines[0].unit_price,
                lines[0].tax_rate,
                percent,
                LineKind.PRODUCT,
            )
        if sc.pay != "free" and rng.random() < 0.07:
            sku, name, price = GIFT_WRAP[ctx.key]
            lines.append(
                self._line(
                    ctx,
                    len(lines) + 1,
                    sku,
                    "",
                    name,
                    "",
                    1,
                    price,
                    VAT_STANDARD,
                    0,
                    LineKind.GIFT_WRAP,
                )
            )
        order.lines = lines

        subtotal = sum((line.unit_price * line.quantity for line in lines), ZERO)
        discount = sum((line.discount_amount for line in lines), ZERO)
        goods = subtotal - discount
        shipping_total = rate.price
        if sc.pay == "free" or (rate.free_from is not None and goods >= rate.free_from):
            shipping_total = ZERO
        elif rng.random() < 0.03:
            codes.append({"code": FREE_SHIPPING_CODE, "type": "free_shipping", "value": "0"})
            shipping_total = ZERO
        for entry in codes:
            if entry["type"] == "percentage":
                entry["amount"] = str(discount)
        # Each discount with its amount, as the connectors keep them (tax included). Free
        # shipping is taken off the shipping itself, so its own amount is nothing more.
        order.discounts = [
            {
                "code": entry["code"],
                "label": (
                    f"Remise {entry['value']} %"
                    if entry["type"] == "percentage"
                    else "Livraison offerte"
                ),
                "amount": str(discount) if entry["type"] == "percentage" else "0.00",
            }
            for entry in codes
        ]
        _, shipping_tax = _split_gross(shipping_total, VAT_STANDARD)
        order.discount_codes = codes
        order.subtotal = subtotal
        order.discount_total = discount
        order.shipping_total = shipping_total
        order.shipping_tax = shipping_tax
        order.tax_total = sum((line.tax_amount for line in lines), ZERO) + shipping_tax
        order.grand_total = goods + shipping_total

    def _line(
        self,
        ctx: _ShopCtx,
        position: int,
        sku: str,
        ean: str,
        name: str,
        options: str,
        quantity: int,
        unit_price: Decimal,
        rate: Decimal,
        percent: int,
        kind: LineKind,
    ) -> OrderLine:
        gross_before = unit_price * quantity
        discount = _money(gross_before * percent / 100) if kind == LineKind.PRODUCT else ZERO
        gross = gross_before - discount
        net, tax = _split_gross(gross, rate)
        external = str(ctx.next_line_external)
        ctx.next_line_external += self.rng.randint(1000, 90000) if ctx.is_shopify else 1
        return OrderLine(
            position=position,
            external_id=external,
            kind=kind,
            sku=sku,
            ean=ean,
            name=name,
            options=options,
            quantity=quantity,
            unit_price=unit_price,
            tax_rate=rate,
            discount_amount=discount,
            total_net=net,
            tax_amount=tax,
            total_gross=gross,
        )

    # -- payments ---------------------------------------------------------------------

    def _transaction_id(self, ctx: _ShopCtx, method: str) -> str:
        rng = self.rng
        if method in ("paypal", "PayPal"):
            return _letters(rng, 1) + "".join(
                rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            )
        if ctx.is_shopify:
            return "6" + _digits(rng, 18)
        return "ch_3" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(23))

    def _online_payment(
        self,
        ctx: _ShopCtx,
        order: Order,
        payment: _PaymentSpec,
        clock: _Clock,
        event: Any,
        shop_actor: Actor,
    ) -> dt.datetime:
        rng = self.rng
        total = order.grand_total
        tx_at = order.placed_at + dt.timedelta(seconds=rng.randint(3, 12))
        if payment.method == "shopify_payments" and rng.random() < 0.2:
            order.transactions.append(
                self._tx(ctx, payment, TransactionKind.AUTHORIZATION, total, tx_at)
            )
            captured = clock.after(dt.timedelta(hours=rng.uniform(0.5, 6)), business=True)
            order.transactions.append(
                self._tx(ctx, payment, TransactionKind.CAPTURE, total, captured)
            )
            event(
                captured,
                shop_actor,
                "payment.captured",
                amount=str(total),
                currency=order.currency,
                method=payment.method,
                method_label=payment.label,
            )
            return captured
        order.transactions.append(self._tx(ctx, payment, TransactionKind.SALE, total, tx_at))
        at = clock.after(dt.timedelta(seconds=1))
        event(
            at,
            shop_actor,
            "payment.received",
            amount=str(total),
            currency=order.currency,
            method=payment.method,
            method_label=payment.label,
        )
        return tx_at

    def _tx(
        self,
        ctx: _ShopCtx,
        payment: _PaymentSpec,
        kind: TransactionKind,
        amount: Decimal,
        at: dt.datetime,
    ) -> Transaction:
        return Transaction(
            external_id=self._transaction_id(ctx, payment.method),
            method=payment.method,
            kind=kind,
            status=TransactionStatus.SUCCESS,
            source=TransactionSource.SHOP,
            amount=amount,
            currency="EUR",
            occurred_at=at,
        )

    def _manual_payment(
        self, order: Order, payment: _PaymentSpec, amount: Decimal, at: dt.datetime, event: Any
    ) -> None:
        rng = self.rng
        name = order.billing_address["last_name"].upper()
        if payment.source == TransactionSource.CHEQUE:
            bank = rng.choice(("Crédit Agricole", "Banque Populaire", "LCL", "Caisse d'Épargne"))
            reference = f"Chèque n° {_digits(rng, 7)} ({bank})"
        else:
            reference = f"VIR SEPA {name} {order.number}"
        order.transactions.append(
            Transaction(
                external_id=None,
                method=payment.method,
                kind=TransactionKind.SALE,
                status=TransactionStatus.SUCCESS,
                source=payment.source,
                amount=amount,
                currency="EUR",
                reference=reference,
                occurred_at=at,
            )
        )
        event(
            at,
            Actor.system(),
            "payment.recorded",
            amount=str(amount),
            currency="EUR",
            source=payment.source.value,
            method=payment.method,
            reference=reference,
        )

    def _refund(
        self,
        ctx: _ShopCtx,
        order: Order,
        sc: _Scenario,
        clock: _Clock,
        event: Any,
        shop_actor: Actor,
        shop_times: list[dt.datetime],
    ) -> None:
        rng = self.rng
        captured = sum(
            (
                t.amount
                for t in order.transactions
                if t.kind in (TransactionKind.SALE, TransactionKind.CAPTURE)
            ),
            ZERO,
        )
        if sc.refund == "partial":
            products = [line for line in order.lines if line.total_gross > ZERO]
            amount = min(line.total_gross for line in products)
            reason = "Article arrivé cassé : remboursement de la ligne."
            delay = dt.timedelta(days=rng.uniform(1, 5))
        else:
            amount = captured
            reason = "Retour de la commande complète reçu en bon état."
            delay = dt.timedelta(days=rng.uniform(6, 12))
        at = clock.after(delay, business=True)
        self._add_refund(ctx, order, amount, at, reason, event, shop_actor, shop_times)

    def _add_refund(
        self,
        ctx: _ShopCtx,
        order: Order,
        amount: Decimal,
        at: dt.datetime,
        reason: str,
        event: Any,
        shop_actor: Actor,
        shop_times: list[dt.datetime],
    ) -> None:
        paid_with = next(
            (
                t
                for t in order.transactions
                if t.kind in (TransactionKind.SALE, TransactionKind.CAPTURE)
            ),
            None,
        )
        method = paid_with.method if paid_with else order.payment_method
        source = paid_with.source if paid_with else TransactionSource.SHOP
        order.transactions.append(
            Transaction(
                external_id=self._transaction_id(ctx, method) if source == "shop" else None,
                method=method,
                kind=TransactionKind.REFUND,
                status=TransactionStatus.SUCCESS,
                source=source,
                amount=amount,
                currency="EUR",
                reference=reason,
                occurred_at=at,
            )
        )
        shop_times.append(at)
        order.payment_state = derive_payment_state(order.grand_total, order.transactions)
        event(
            at,
            shop_actor,
            "payment.refunded",
            amount=str(amount),
            currency="EUR",
            reason=reason,
        )

    # -- cancellation, shipping, milestones -------------------------------------------

    def _cancel(
        self,
        ctx: _ShopCtx,
        order: Order,
        sc: _Scenario,
        clock: _Clock,
        event: Any,
        shop_actor: Actor,
        shop_times: list[dt.datetime],
    ) -> None:
        rng = self.rng
        age_days = (self.horizon - order.placed_at).days
        if sc.cancel == "unpaid" and age_days >= 11 and rng.random() < 0.7:
            at = clock.after(dt.timedelta(days=10, hours=rng.uniform(1, 20)), business=True)
            reason, actor = CANCEL_REASON_UNPAID_LATE, Actor.system()
        elif sc.cancel == "unpaid":
            at = clock.after(dt.timedelta(hours=rng.uniform(1, 20)), business=True)
            reason, actor = rng.choice(CANCEL_REASONS_UNPAID), shop_actor
        else:
            at = clock.after(dt.timedelta(hours=rng.uniform(2, 10)), business=True)
            reason, actor = rng.choice(CANCEL_REASONS_REFUNDED), shop_actor
        order.commercial_state = CommercialState.CANCELLED
        order.cancelled_at = at
        order.cancel_reason = reason
        order.on_hold = False
        order.hold_reason = ""
        event(at, actor, "order.cancelled", reason=reason)
        if actor is shop_actor:
            shop_times.append(at)
        if sc.cancel == "refunded":
            captured = sum(
                (
                    t.amount
                    for t in order.transactions
                    if t.kind in (TransactionKind.SALE, TransactionKind.CAPTURE)
                ),
                ZERO,
            )
            refund_at = clock.after(dt.timedelta(minutes=rng.randint(1, 30)))
            self._add_refund(
                ctx,
                order,
                captured,
                refund_at,
                "Remboursement intégral.",
                event,
                shop_actor,
                shop_times,
            )
        self._push_milestone(ctx, order, clock, event, shop_times)

    def _ship(
        self,
        ctx: _ShopCtx,
        order: Order,
        sc: _Scenario,
        clock: _Clock,
        event: Any,
        shop_times: list[dt.datetime],
    ) -> None:
        rng = self.rng
        products = [line for line in order.lines if line.kind == LineKind.PRODUCT]
        wraps = [line for line in order.lines if line.kind != LineKind.PRODUCT]
        quantities = {id(line): line.quantity for line in products}
        if sc.stage == 2:
            first = self._partial_selection(products)
            batches = [first]
        elif len(products) >= 2 and rng.random() < 0.12:
            first = self._partial_selection(products)
            rest = {k: quantities[k] - first.get(k, 0) for k in quantities}
            batches = [first, {k: q for k, q in rest.items() if q > 0}]
        else:
            batches = [dict(quantities)]

        for number, batch in enumerate(batches):
            shipped_at = clock.after(
                dt.timedelta(hours=rng.uniform(0.5, 4) if number == 0 else rng.uniform(20, 50)),
                business=True,
            )
            shipment = self._shipment(order, products, batch, shipped_at)
            complete = number == len(batches) - 1 and sc.stage >= 3
            if complete:
                # Gift wrapping travels with the last parcel.
                for line in wraps:
                    shipment.lines.append(ShipmentLine(order_line=line, quantity=line.quantity))
            state = FulfilmentState.SHIPPED if complete else FulfilmentState.PARTIALLY_SHIPPED
            previous = order.fulfilment_state
            order.fulfilment_state = state
            tracking = [p.tracking_number for p in shipment.parcels]
            event(
                shipped_at,
                Actor.system(),
                "shipment.shipped",
                carrier=order.shipping_mode.name if order.shipping_mode else "",
                shipment=shipment.number,
                tracking=tracking,
            )
            if previous != state:
                event(
                    clock.after(dt.timedelta(seconds=1)),
                    Actor.system(),
                    f"order.{state.value}",
                    **{"from": previous.value, "to": state.value},
                )
            self._push_milestone(ctx, order, clock, event, shop_times)

        if sc.stage >= 4:
            delivered_at = clock.after(dt.timedelta(days=rng.uniform(1, 3)), business=True)
            for shipment in order.shipments:
                shipment.state = ShipmentState.DELIVERED
                shipment.delivered_at = delivered_at
            event(
                delivered_at,
                Actor.system(),
                "order.delivered",
                **{"from": FulfilmentState.SHIPPED.value, "to": "delivered"},
            )
            order.fulfilment_state = FulfilmentState.DELIVERED

    def _partial_selection(self, products: list[OrderLine]) -> dict[int, int]:
        """Pick what the first of several shipments carries: never everything, never nothing."""
        if len(products) >= 2:
            keep = self.rng.randint(1, len(products) - 1)
            return {id(line): line.quantity for line in products[:keep]}
        line = products[0]
        return {id(line): self.rng.randint(1, line.quantity - 1)}

    def _shipment(
        self, order: Order, products: list[OrderLine], batch: dict[int, int], at: dt.datetime
    ) -> Shipment:
        rng = self.rng
        self.shipment_seq += 1
        shipment = Shipment(
            number=f"EXP-{self.shipment_seq:06d}",
            state=ShipmentState.SHIPPED,
            shipping_mode=order.shipping_mode,
            created_at=at - dt.timedelta(minutes=rng.randint(5, 40)),
            shipped_at=at,
        )
        weight = Decimal("0")
        items = 0
        for line in products:
            quantity = batch.get(id(line), 0)
            if quantity:
                shipment.lines.append(ShipmentLine(order_line=line, quantity=quantity))
                weight += self._weight(order, line) * quantity
                items += quantity
        parcels = 2 if (weight > Decimal("3") or items > 5) and rng.random() < 0.7 else 1
        mode = order.shipping_mode
        postcode = order.shipping_address.get("postcode", "")
        for index in range(parcels):
            share = weight / parcels + Decimal(rng.randint(120, 380)) / 1000
            number = tracking_number(rng, mode.code) if mode else ""
            shipment.parcels.append(
                Parcel(
                    tracking_number=number,
                    tracking_url=mode.tracking_url(number, postcode) if mode else "",
                    weight_kg=share.quantize(Decimal("0.001")),
                    created_at=shipment.created_at + dt.timedelta(seconds=index + 1),
                )
            )
        order.shipments.append(shipment)
        self.summary.shipments += 1
        self.summary.parcels += parcels
        return shipment

    def _weight(self, order: Order, line: OrderLine) -> Decimal:
        catalogue = SHOPIFY_CATALOGUE if order.shop.key == SHOPIFY_KEY else PRESTA_CATALOGUE
        for variant in catalogue:
            if variant.sku == line.sku:
                return variant.weight_kg
        return Decimal("0.2")

    def _push_milestone(
        self,
        ctx: _ShopCtx,
        order: Order,
        clock: _Clock,
        event: Any,
        shop_times: list[dt.datetime],
    ) -> None:
        current = milestone(order)
        if current is None or current == order.last_pushed_milestone:
            return
        status, enabled = ctx.milestones[current]
        if not enabled:
            return
        queued = clock.after(dt.timedelta(seconds=self.rng.randint(1, 5)))
        at = clock.after(dt.timedelta(seconds=self.rng.randint(1, 15)))
        order.last_pushed_milestone = current
        shop_times.append(at)
        self.session.add(
            OutboxMessage(
                shop=ctx.shop,
                order=order,
                kind=outbox.STATUS,
                payload={"milestone": current.value, "status": status, "notify": True},
                idempotency_key=f"demo:{ctx.shop.key}:{order.external_id}:{current.value}",
                state=OutboxState.SENT,
                attempts=1,
                created_at=queued,
                next_attempt_at=queued,
                sent_at=at,
            )
        )
        event(
            queued,
            Actor.system(),
            "outbox.queued",
            kind=outbox.STATUS,
            status=status,
            shop=ctx.shop.name,
            milestone=current.value,
        )
        event(
            at,
            Actor.system(),
            "outbox.sent",
            kind=outbox.STATUS,
            status=status,
            shop=ctx.shop.name,
            milestone=current.value,
            written=True,
        )

    def _comment(self, order: Order, at: dt.datetime, text: str, visible: bool, event: Any) -> None:
        order.comments.append(
            Comment(
                text=text,
                visibility=CommentVisibility.CUSTOMER if visible else CommentVisibility.INTERNAL,
                notify_customer=visible,
                created_at=at,
                pushed_at=at + dt.timedelta(seconds=4) if visible else None,
            )
        )
        self.summary.comments += 1
        if visible:
            self.session.add(
                OutboxMessage(
                    shop=order.shop,
                    order=order,
                    kind=outbox.COMMENT,
                    payload={"text": text, "customer_visible": True, "notify": True},
                    idempotency_key=(
                        f"demo:{order.shop.key}:{order.external_id}:comment:{self.summary.comments}"
                    ),
                    state=OutboxState.SENT,
                    attempts=1,
                    created_at=at,
                    next_attempt_at=at,
                    sent_at=at + dt.timedelta(seconds=4),
                )
            )
        kind = "comment.customer" if visible else "comment.internal"
        event(
            at,
            Actor.system(),
            kind,
            excerpt=text[:200],
            visibility="customer" if visible else "internal",
        )

    def _shop_status(self, ctx: _ShopCtx, order: Order, payment: _PaymentSpec) -> str:
        """Return the status the shop itself would now show for the order."""
        state = order.payment_state
        if ctx.is_shopify:
            if order.commercial_state == CommercialState.CANCELLED and state == "unpaid":
                return "voided"
            return {
                PaymentState.UNPAID: "pending",
                PaymentState.PARTIALLY_PAID: "partially_paid",
                PaymentState.PAID: "paid",
                PaymentState.PARTIALLY_REFUNDED: "partially_refunded",
                PaymentState.REFUNDED: "refunded",
            }[state]
        awaiting = (
            "En attente du paiement par chèque"
            if payment.source == TransactionSource.CHEQUE
            else "En attente de virement bancaire"
        )
        if order.commercial_state == CommercialState.CANCELLED:
            return "Remboursé" if state == PaymentState.REFUNDED else "Annulé"
        if state == PaymentState.REFUNDED:
            return "Remboursé"
        if order.fulfilment_state == FulfilmentState.DELIVERED:
            return "Livré"
        if order.fulfilment_state == FulfilmentState.SHIPPED:
            return "Expédié"
        if order.fulfilment_state in (
            FulfilmentState.IN_PREPARATION,
            FulfilmentState.PARTIALLY_SHIPPED,
        ):
            return "En cours de préparation"
        if state in (PaymentState.UNPAID, PaymentState.PARTIALLY_PAID):
            return awaiting
        return "Paiement accepté"

    # -- inbox ------------------------------------------------------------------------

    def _inbox(self, orders: list[Order], shopify: _ShopCtx, presta: _ShopCtx) -> None:
        rng = self.rng
        rows: list[InboxEvent] = []
        recent = sorted(orders, key=lambda o: o.placed_at)[-12:]
        for order in recent:
            ctx = shopify if order.shop is shopify.shop else presta
            if order.needs_mapping:
                continue
            rows.append(self._inbox_row(ctx, order, InboxState.PROCESSED))
        parked = next((o for o in reversed(orders) if o.needs_mapping), None)
        if parked is not None:
            ctx = shopify if parked.shop is shopify.shop else presta
            row = self._inbox_row(ctx, parked, InboxState.PARKED)
            row.error = mapping_issues.describe(parked.mapping_issues)
            row.cause_kind = "needs_mapping"
            row.cause_params = {"issues": parked.mapping_issues}
            row.processed_at = None
            rows.append(row)
        failed_id = str(presta.next_external)
        body = json.dumps({"order": {"id": failed_id}}).encode()
        received = self.limit - dt.timedelta(minutes=rng.randint(20, 90))
        rows.append(
            InboxEvent(
                shop=presta.shop,
                topic="poll/orders",
                dedupe_key=f"orders/{failed_id}@{received.astimezone(PARIS):%Y-%m-%d %H:%M:%S}",
                external_order_id=failed_id,
                raw_body=body,
                headers={},
                received_at=received,
                state=InboxState.FAILED,
                attempts=5,
                error=(
                    f"PlatformUnavailable: HTTP 503 Service Unavailable from "
                    f"{presta.shop.base_url}/api/orders/{failed_id} after 5 attempts"
                ),
                cause_kind="shop_unavailable",
                cause_params={
                    "status": 503,
                    "detail": f"PlatformUnavailable: HTTP 503 Service Unavailable from "
                    f"{presta.shop.base_url}/api/orders/{failed_id} after 5 attempts",
                },
                processed_at=None,
                order_id=None,
            )
        )
        self.session.add_all(rows)
        self.summary.inbox_events = len(rows)

    def _inbox_row(self, ctx: _ShopCtx, order: Order, state: InboxState) -> InboxEvent:
        rng = self.rng
        received = order.created_at
        if ctx.is_shopify:
            body = json.dumps(
                {
                    "id": int(order.external_id),
                    "name": order.number,
                    "email": order.email,
                    "total_price": str(order.grand_total),
                    "currency": order.currency,
                    "financial_status": order.shop_status,
                    "shipping_lines": [{"title": order.shipping_label}],
                },
                ensure_ascii=False,
            ).encode()
            webhook_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            topic = "orders/create"
            dedupe = webhook_id
            headers = {
                "X-Shopify-Topic": topic,
                "X-Shopify-Shop-Domain": "atelier-lumiere.myshopify.com",
                "X-Shopify-Webhook-Id": webhook_id,
                "X-Shopify-API-Version": "2025-10",
            }
        else:
            stamp = f"{order.placed_at.astimezone(PARIS):%Y-%m-%d %H:%M:%S}"
            body = json.dumps(
                {
                    "order": {
                        "id": order.external_id,
                        "reference": order.number,
                        "current_state": order.shop_status,
                        "date_upd": stamp,
                        "total_paid": f"{order.grand_total:.6f}",
                    }
                },
                ensure_ascii=False,
            ).encode()
            topic = "poll/orders"
            dedupe = f"orders/{order.external_id}@{stamp}"
            headers = {}
        return InboxEvent(
            shop=ctx.shop,
            topic=topic,
            dedupe_key=dedupe,
            external_order_id=order.external_id,
            raw_body=body,
            headers=headers,
            received_at=received,
            state=state,
            attempts=1,
            error="",
            processed_at=received + dt.timedelta(seconds=1),
            order_id=order.id,
        )


def seed_demo(
    session: Session,
    *,
    orders: int = 300,
    seed: int = 20261127,
    today: dt.date | None = None,
) -> DemoSummary:
    """Create two demo shops with carriers, customers and coherent orders; never commits."""
    if not 1 <= orders <= MAX_ORDERS:
        message = f"Ask for between 1 and {MAX_ORDERS} demo orders."
        raise ValidationFailed(message, {"orders": message})
    present = session.scalars(select(Shop.key).where(Shop.key.in_(DEMO_SHOP_KEYS))).all()
    if present:
        message = "demo data already present"
        raise ValidationFailed(message, {"shops": ", ".join(sorted(present))})
    if today is None:
        today = dt.datetime.now(PARIS).date()
    summary = _DemoBuilder(session, random.Random(seed), today).run(orders)
    demo_company(session)
    return summary


# A fictitious seller with valid check digits (SIREN and SIRET by Luhn, the French VAT key,
# the IBAN's mod 97), so invoices can be issued at once; its phone number is in the range
# ARCEP keeps for fiction and its e-mail on example.com.
_DEMO_SIREN = _siren("90412658")
DEMO_COMPANY = {
    "legal_name": "Comptoir Démo SAS",
    "trade_name": "Atelier Lumière & La Belle Épicerie",
    "legal_form": "SAS",
    "address": "8 rue des Artisans",
    "postcode": "69001",
    "city": "Lyon",
    "country": "FR",
    "email": "factures@example.com",
    "phone": "+33 1 99 00 12 34",
    "website": "https://boutique.labelleepicerie.fr",
    "siren": _DEMO_SIREN,
    "siret": _DEMO_SIREN + "0001" + luhn.calc_check_digit(_DEMO_SIREN + "0001"),
    "rcs_city": "Lyon",
    "share_capital": "10000",
    "vat_number": french_vat_number(_DEMO_SIREN),
    "vat_regime": "normal",
    "iban": "FR76 3000 4000 3100 0123 4567 865",
    "bic": "BNPAFRPPXXX",
    "payment_terms": "Paiement à réception de facture",
    "payment_days": "0",
}


def demo_company(session: Session) -> None:
    """Fill the company settings with the demo seller, unless a company is already named."""
    from web.services.company import ensure_company, update_company

    if not ensure_company(session).legal_name:
        update_company(session, DEMO_COMPANY)
