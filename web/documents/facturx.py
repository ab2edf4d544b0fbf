"""Factur-X: the EN 16931 (Comfort) CII XML of an invoice or credit note, inside its PDF/A-3b.

The XML says what the snapshot says (format: web.documents.invoices) and adds up to the
same totals, to the cent; it is built with the `factur-x` library's generator (element
order, namespaces) and checked against the XSD that library ships. An XML that fails the
check raises FacturXError: an invoice whose data is invalid is not issued.

How the snapshot's lines become EN 16931 data:
- product, fee, shipping and amount lines are invoice lines (BG-25), quantity in C62 (one
  piece), net price BT-146 = the undiscounted unit price. Shipping stays a line rather than
  a document charge (BG-21): a credit note of the shipping alone still has the line that
  EN 16931 requires (BR-16).
- a `discount` line right after its product line (same order line, rate and category) is
  that line's allowance (BG-27, reason code 95 "Discount"); the line's net amount BT-131
  is then the product's minus its discount, as the buyer pays it. Any other negative line
  (the order's discounts, per rate) is a document allowance (BG-20) with its VAT category
  and rate. No line has a negative price (BR-27).
- under the VAT franchise every line is category E at 0 %, the breakdown carries the
  mention of art. 293 B (BT-120) and the code VATEX-FR-FRANCHISE (BT-121); a seller with
  no VAT number gives its SIREN as tax registration (BT-32, scheme FC), which BR-E-02 asks.
- a 0 % line under the normal regime is category Z (EN 16931 refuses S at 0 %, BR-S-05).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations

from web.documents.company import FRANCHISE_MENTION
from web.documents.render import TRANSLATIONS
from web.i18n import N_

LEVEL = "en16931"
TYPE_CODES = {"invoice": "380", "credit_note": "381"}
UNIT_CODE = "C62"  # one piece (UN/ECE Recommendation 20)
SIREN_SCHEME = "0002"  # ISO 6523: SIRENE
SIRET_SCHEME = "0009"  # ISO 6523: SIRET
DISCOUNT_CODE = "95"  # UNTDID 5189: discount
CREDIT_TRANSFER = "58"  # UNTDID 4461: SEPA credit transfer
FRANCHISE_CODE = "VATEX-FR-FRANCHISE"
CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.0001")
ZERO = Decimal("0.00")

DISCOUNT = N_("Discount")
NET_TO_DEDUCT = N_("Net to deduct")
TITLES = {"invoice": N_("Invoice %(reference)s"), "credit_note": N_("Credit note %(reference)s")}
CAPITAL = N_("%(form)s with a share capital of %(capital)s")


class FacturXError(Exception):
    """The document's Factur-X data is inconsistent or invalid: it must not be issued."""


@functools.cache
def _translations(locale: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), [locale], domain="messages")


def _text(locale: str, message: str, **params: str) -> str:
    text = _translations(locale).gettext(message)
    return text % params if params else text


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _amount(value: Decimal) -> str:
    return f"{value.quantize(CENT):f}"


def _price(value: Any) -> str:
    price = Decimal(str(value)).quantize(PRICE_PLACES)
    if price == price.quantize(CENT):
        price = price.quantize(CENT)
    return f"{price:f}"


def _quantity(value: Any) -> str:
    return f"{Decimal(str(value)).normalize():f}"


def _rate(value: Any) -> str:
    return f"{Decimal(str(value)).quantize(CENT):f}"


def _category(category: str, rate: Any) -> str:
    """The EN 16931 VAT category: S at 0 % does not exist there (BR-S-05), Z does."""
    if category == "S" and Decimal(str(rate)) == 0:
        return "Z"
    return category


def legal_mention(seller: Mapping[str, Any], locale: str, currency: str) -> str:
    """'SAS with a share capital of €10,000.00 · RCS Lyon 732829320' (what is known)."""
    parts = []
    form = seller.get("legal_form") or ""
    if form and seller.get("share_capital"):
        capital = format_currency(Decimal(seller["share_capital"]), currency, locale=locale)
        parts.append(_text(locale, CAPITAL, form=form, capital=capital))
    elif form:
        parts.append(form)
    if seller.get("rcs_city"):
        parts.append(f"RCS {seller['rcs_city']} {seller.get('siren') or ''}".strip())
    return " · ".join(parts)


# --- Parties -------------------------------------------------------------------------------


def _address(street: list[str], postcode: str, city: str, country: str) -> dict[str, str]:
    lines = [line for line in street if line]
    address = {"country_code": country, "postcode": postcode, "city": city}
    if lines:
        address["addr_l1"] = lines[0]
    if len(lines) > 1:
        address["addr_l2"] = lines[1]
    if len(lines) > 2:
        address["addr_l3"] = ", ".join(lines[2:])
    return {key: value for key, value in address.items() if value}


def _vat_number(value: str) -> str:
    """A VAT number the XML may carry: it starts with its country's prefix (BR-CO-09)."""
    number = value.replace(" ", "").upper()
    return number if len(number) > 2 and number[:2].isalpha() else ""


def _seller(data: Mapping[str, Any]) -> dict[str, Any]:
    seller = data["seller"]
    party: dict[str, Any] = {
        "name": seller.get("legal_name") or seller["name"],
        **_address(
            seller.get("street_lines") or [],
            seller.get("postcode") or "",
            seller.get("city") or "",
            seller.get("country") or "FR",
        ),
    }
    if seller.get("trade_name") and seller["trade_name"] != party["name"]:
        party["biz_name"] = seller["trade_name"]
    if seller.get("siren"):
        party["legal_identifier"] = seller["siren"]
        party["legal_identifier_schemeid"] = SIREN_SCHEME
    if seller.get("siret"):
        party["identifiers"] = {SIRET_SCHEME: seller["siret"]}
    vat_number = _vat_number(seller.get("vat_number") or "")
    if vat_number:
        party["vat_identifier"] = vat_number
    elif seller.get("siren"):
        # BR-E-02: an exempt line needs a seller VAT number or a tax registration.
        party["tax_identifier"] = seller["siren"]
    mention = legal_mention(seller, data["locale"], data["currency"])
    if mention:
        party["legal_info"] = mention
    contact = {key: seller.get(key) for key in ("email", "phone") if seller.get(key)}
    if contact:
        party["contacts"] = [contact]
    return party


def _country_name_free(lines: list[str], country: str, locale: str) -> list[str]:
    name = Locale.parse(locale).territories.get(country, "") if country else ""
    return lines[:-1] if lines and name and lines[-1] == name else lines


def _buyer(data: Mapping[str, Any], country: str) -> dict[str, Any]:
    buyer = data["buyer"]
    name = buyer.get("company") or buyer.get("name") or buyer.get("email") or "—"
    party: dict[str, Any] = {
        "name": name,
        **_address(
            buyer.get("street_lines") or [],
            buyer.get("postcode") or "",
            buyer.get("city") or "",
            country,
        ),
    }
    if buyer.get("siren"):
        party["legal_identifier"] = buyer["siren"]
        party["legal_identifier_schemeid"] = SIREN_SCHEME
    vat_number = _vat_number(buyer.get("vat_number") or "")
    if vat_number:
        party["vat_identifier"] = vat_number
    return party


def _delivery(data: Mapping[str, Any], country: str) -> dict[str, Any]:
    delivery = data.get("delivery") or {}
    lines = _country_name_free(list(delivery.get("address_lines") or []), country, data["locale"])
    # The snapshot keeps the delivery address as printed lines (no postcode or city apart).
    name = delivery.get("name") or data["buyer"].get("name") or "—"
    return {"name": name, **_address(lines, "", "", country)}


# --- Lines, allowances, VAT ----------------------------------------------------------------


def _attaches_to(discount: Mapping[str, Any], line: Mapping[str, Any] | None) -> bool:
    """A product's discount line right after it: the same order line, rate and category."""
    return (
        line is not None
        and discount["kind"] == "discount"
        and discount["order_line_id"] is not None
        and discount["order_line_id"] == line["order_line_id"]
        and discount["tax_rate"] == line["tax_rate"]
        and discount["tax_category"] == line["tax_category"]
    )


def _lines_and_allowances(
    data: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Invoice lines (BG-25, with their discounts as BG-27) and document allowances (BG-20)."""
    locale = data["locale"]
    items: list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = []
    allowances: list[dict[str, Any]] = []
    for line in data["lines"]:
        if _money(line["total_net"]) >= 0:
            items.append((line, []))
        elif items and _attaches_to(line, items[-1][0]):
            items[-1][1].append(line)
        else:
            is_discount = line["kind"] == "discount"
            allowance = {
                "amount": _amount(-_money(line["total_net"])),
                "reason": line["name"] or _text(locale, DISCOUNT),
                "vat_category_code": _category(line["tax_category"], line["tax_rate"]),
                "vat_rate": _rate(line["tax_rate"]),
            }
            if is_discount:
                allowance["reason_code"] = DISCOUNT_CODE
            allowances.append(allowance)
    if not items:
        raise FacturXError("a document needs at least one line that is not a discount (BR-16)")
    lines = []
    for line, discounts in items:
        net = _money(line["total_net"]) + sum((_money(d["total_net"]) for d in discounts), ZERO)
        entry: dict[str, Any] = {
            "BT-126": str(line["position"]),
            "BT-129": _quantity(line["quantity"]),
            "BT-130": UNIT_CODE,
            "BT-131": _amount(net),
            "BT-146": _price(max(Decimal(str(line["unit_price_net"])), ZERO)),
            "BT-151": _category(line["tax_category"], line["tax_rate"]),
            "BT-152": _rate(line["tax_rate"]),
            "BT-153": line["name"] or line["sku"] or "—",
        }
        if line.get("sku"):
            entry["BT-155"] = line["sku"]
        if discounts:
            entry["BG-27"] = [
                {
                    "amount": _amount(-_money(discount["total_net"])),
                    "reason": _text(locale, DISCOUNT),
                    "reason_code": DISCOUNT_CODE,
                }
                for discount in discounts
            ]
        lines.append(entry)
    return lines, allowances


def _breakdown(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BG-23 from the snapshot's taxes, per EN 16931 category and rate."""
    franchise = data.get("vat_regime") == "franchise"
    grouped: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    reasons: dict[tuple[str, str], str] = {}
    for tax in data["taxes"]:
        key = (_category(tax["category"], tax["rate"]), _rate(tax["rate"]))
        grouped[key][0] += _money(tax["base"])
        grouped[key][1] += _money(tax["tax"])
        if tax.get("exemption_reason"):
            reasons[key] = tax["exemption_reason"]
    breakdown = []
    for (category, rate), (base, tax) in grouped.items():
        entry = {
            "BT-116": _amount(base),
            "BT-117": _amount(tax),
            "BT-118": category,
            "BT-119": rate,
        }
        if category == "E":
            entry["BT-120"] = reasons.get((category, rate)) or FRANCHISE_MENTION
            if franchise:
                entry["BT-121"] = FRANCHISE_CODE
        breakdown.append(entry)
    return breakdown


def _notes(data: Mapping[str, Any]) -> list[dict[str, str]]:
    """Free texts with their UNTDID 4451 subjects: the reason, the terms, the franchise."""
    terms = data.get("terms") or {}
    notes = []
    if data.get("reason"):
        notes.append({"BT-21": "ACD", "BT-22": data["reason"]})  # reason
    if data.get("vat_exemption"):
        notes.append({"BT-21": "TXD", "BT-22": data["vat_exemption"]})  # tax declaration
    for subject, key in (
        ("AAB", "early_payment"),
        ("PMD", "late_penalty"),
        ("PMT", "recovery_indemnity"),
    ):
        if terms.get(key):
            notes.append({"BT-21": subject, "BT-22": terms[key]})
    return notes


# --- The XML -------------------------------------------------------------------------------


def data_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot as the `factur-x` generator's EN 16931 terms (BT-*, BG-*)."""
    kind = data["kind"]
    seller_country = data["seller"].get("country") or "FR"
    buyer_country = (
        data["buyer"].get("country")
        or (data.get("delivery") or {}).get("country")
        or seller_country
    )
    delivery_country = (data.get("delivery") or {}).get("country") or buyer_country
    lines, allowances = _lines_and_allowances(data)
    totals = data["totals"]
    line_total = sum((_money(line["BT-131"]) for line in lines), ZERO)
    allowance_total = sum((_money(item["amount"]) for item in allowances), ZERO)
    breakdown = _breakdown(data)
    net, tax, gross = _money(totals["net"]), _money(totals["tax"]), _money(totals["gross"])
    if line_total - allowance_total != net:
        raise FacturXError(f"lines add up to {line_total - allowance_total}, the total is {net}")
    if sum((_money(entry["BT-116"]) for entry in breakdown), ZERO) != net:
        raise FacturXError("the VAT breakdown's bases do not add up to the net total")
    if sum((_money(entry["BT-117"]) for entry in breakdown), ZERO) != tax or net + tax != gross:
        raise FacturXError("the VAT breakdown does not add up to the document's totals")
    result: dict[str, Any] = {
        "BT-1": data["reference"],
        "BT-2": data["issue_date"],
        "BT-3": TYPE_CODES[kind],
        "BT-5": data["currency"],
        "BT-14": data["order"]["number"],
        "BT-72": data["delivery_date"],
        "BG-1": _notes(data),
        "BG-4": _seller(data),
        "BG-7": _buyer(data, buyer_country),
        "BG-13": _delivery(data, delivery_country),
        "BG-23": breakdown,
        "BG-25": lines,
        "BT-106": _amount(line_total),
        "BT-109": _amount(net),
        "BT-110": _amount(tax),
        "BT-112": _amount(gross),
        "BT-113": _amount(_money(totals["paid"])),
        "BT-115": _amount(_money(totals["due"])),
    }
    if allowances:
        result["BG-20"] = allowances
        result["BT-107"] = _amount(allowance_total)
    if kind == "invoice":
        seller = data["seller"]
        if data.get("due_date"):
            result["BT-9"] = data["due_date"]
        if data["terms"].get("payment_terms"):
            result["BT-20"] = data["terms"]["payment_terms"]
        if seller.get("iban"):
            result.update({"BT-81": CREDIT_TRANSFER, "BT-83": data["reference"]})
            result["BT-84"] = seller["iban"].replace(" ", "")
            if seller.get("bic"):
                result["BT-86"] = seller["bic"]
    else:
        result["BT-20"] = _text(data["locale"], NET_TO_DEDUCT)
        corrects = data.get("corrects")
        if corrects:
            result["BG-3"] = [{"BT-25": corrects["reference"], "BT-26": corrects["issue_date"]}]
    return result


# Characters XML 1.0 cannot carry (control characters a shop's product name may hold).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_safe(value: Any) -> Any:
    if isinstance(value, str):
        return NOT_XML.sub(" ", value)
    if isinstance(value, dict):
        return {key: _xml_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_xml_safe(item) for item in value]
    return value


def cii_xml(data: Mapping[str, Any]) -> bytes:
    """The EN 16931 CII XML of an invoice (380) or credit note (381), checked against the XSD."""
    from facturx import generate_cii_xml

    try:
        return bytes(
            generate_cii_xml(
                _xml_safe(data_dict(data)), level=LEVEL, check_xsd=True, check_schematron=False
            )
        )
    except FacturXError:
        raise
    except Exception as exc:  # the library raises bare Exceptions (XSD) and ValueErrors
        raise FacturXError(f"{data['reference']}: {exc}") from exc


def embed(pdf: bytes, data: Mapping[str, Any]) -> bytes:
    """The PDF/A-3b with its `factur-x.xml` attached, the XMP metadata the profile asks."""
    from facturx import generate_from_binary

    xml = cii_xml(data)
    locale = data["locale"]
    title = _text(locale, TITLES[data["kind"]], reference=data["reference"])
    seller = data["seller"].get("name") or ""
    metadata = {
        "author": seller,
        "keywords": "Factur-X",
        "title": title,
        "subject": f"{title} — {seller}",
    }
    try:
        return bytes(
            generate_from_binary(
                pdf,
                xml,
                flavor="factur-x",
                level=LEVEL,
                check_xsd=False,  # cii_xml checked it
                pdf_metadata=metadata,
                lang="fr-FR" if locale == "fr" else "en-GB",
            )
        )
    except Exception as exc:
        raise FacturXError(f"{data['reference']}: {exc}") from exc
