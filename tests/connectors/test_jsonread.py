"""Typed readers for platform JSON: every refusal names the field and what came instead."""

from __future__ import annotations

from decimal import Decimal

import pytest

from web.connectors import jsonread
from web.connectors.base import BadPayload


def test_json_keeps_fractions_exact_and_big_ids_whole() -> None:
    data = jsonread.loads(b'{"total": 19.90, "id": 9007199254740993}', "GET /orders/1")
    assert data == {"total": Decimal("19.90"), "id": 9007199254740993}
    assert str(data["total"]) == "19.90"


@pytest.mark.parametrize("payload", [b"{not json", b'{"total": NaN}', b'{"t": Infinity}', None])
def test_what_is_not_json_is_refused_naming_the_request(payload: bytes | None) -> None:
    with pytest.raises(BadPayload) as refused:
        jsonread.loads(payload, "GET /orders/1")  # type: ignore[arg-type]
    assert str(refused.value).startswith("GET /orders/1: not valid JSON (")


def test_nan_is_refused_as_not_a_number() -> None:
    with pytest.raises(BadPayload) as refused:
        jsonread.loads('{"total": NaN}', "order")
    assert str(refused.value) == "order: not valid JSON (NaN is not a JSON number)"


def test_objects_and_lists_are_read_or_refused_by_field() -> None:
    assert jsonread.obj({"a": 1}, "order") == {"a": 1}
    assert jsonread.opt_obj(None, "order.shipping") is None
    assert jsonread.opt_obj({}, "order.shipping") == {}
    assert jsonread.array(None, "order.lines") == []
    assert jsonread.array([1], "order.lines") == [1]
    with pytest.raises(BadPayload) as not_object:
        jsonread.opt_obj([], "order.shipping")
    assert str(not_object.value) == "order.shipping: expected an object, got list"
    with pytest.raises(BadPayload) as not_list:
        jsonread.array({}, "order.lines")
    assert str(not_list.value) == "order.lines: expected a list, got dict"


def test_text_is_stripped_numbers_written_out_and_anything_else_refused() -> None:
    assert jsonread.text(None, "order.note") == ""
    assert jsonread.text("  Colis fragile ", "order.note") == "Colis fragile"
    assert jsonread.text(42, "order.number") == "42"
    assert jsonread.text(Decimal("1.50"), "order.weight") == "1.50"
    for value, kind in ((True, "bool"), ([], "list"), (1.5, "float")):
        with pytest.raises(BadPayload) as refused:
            jsonread.text(value, "order.note")
        assert str(refused.value) == f"order.note: expected text, got {kind}"


def test_ids_are_digits_from_numbers_or_strings() -> None:
    assert jsonread.digits_id(0, "order.id", "Shopify") == "0"
    assert jsonread.digits_id(2**63, "order.id", "Shopify") == str(2**63)
    assert jsonread.digits_id(" 0042 ", "order.id", "Magento") == "0042"
    for value in (-1, True, "12a", "", "1 2", 12.0, None):
        with pytest.raises(BadPayload) as refused:
            jsonread.digits_id(value, "order.id", "Magento")
        assert str(refused.value) == f"order.id: {value!r} is not a Magento id"
