"""The parties printed on documents (seller, buyer, delivery), frozen as plain data.

A document keeps its own copy of names and addresses: a later change to the order, the
customer or the company settings never changes a document already issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel import Locale

from web.models import Order

STREET_KEYS: tuple[str, ...] = (
    "address1",
    "address2",
    "address3",
    "address_1",
    "address_2",
    "street",
    "line1",
    "line2",
)


def person_name(address: Mapping[str, Any]) -> str:
    name = f"{address.get('first_name') or ''} {address.get('last_name') or ''}".strip()
    return name or str(address.get("name") or "")


def address_lines(address: Mapping[str, Any], locale: str) -> list[str]:
    """The lines under the name: company, streets, postcode and city, country."""
    lines = []
    if address.get("company"):
        lines.append(str(address["company"]))
    lines += [str(address[key]) for key in STREET_KEYS if address.get(key)]
    postcode = address.get("postcode") or address.get("zip") or address.get("postal_code") or ""
    city_line = f"{postcode} {address.get('city') or ''}".strip()
    if city_line:
        lines.append(city_line)
    country = _country(address, locale)
    if country:
        lines.append(country)
    return lines


def _country(address: Mapping[str, Any], locale: str) -> str:
    if address.get("country_name"):
        return str(address["country_name"])
    code = str(address.get("country_code") or address.get("country") or "").upper()
    if len(code) == 2:
        return str(Locale.parse(locale).territories.get(code, code))
    return code


def party(address: Mapping[str, Any], locale: str, email: str = "") -> dict[str, Any]:
    """A buyer or recipient as printed: name, address lines, e-mail and phone."""
    return {
        "name": person_name(address),
        "address_lines": address_lines(address, locale),
        "email": email or str(address.get("email") or ""),
        "phone": str(address.get("phone") or ""),
    }


def delivery_party(order: Order, locale: str) -> dict[str, Any]:
    """Where the parcels go, with the relay point the shop sent when there is one."""
    address = order.shipping_address or order.billing_address or {}
    recipient = party(address, locale)
    relay_id = address.get("relay_point_id") or address.get("relay_id")
    recipient["relay_point"] = (
        {"id": str(relay_id), "name": str(address.get("company") or "")} if relay_id else None
    )
    return recipient


def seller_party(order: Order, locale: str) -> dict[str, Any]:
    """Who sells and ships: the company settings, or the shop's name until they are filled."""
    from sqlalchemy.orm import object_session

    from web.documents.company import company_settings, seller

    session = object_session(order)
    assert session is not None, "the order belongs to a session"
    return seller(company_settings(session), order)
