"""Route converters shared by every blueprint."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, PathConverter

from web.services.paging import MAX_ID


def _at_most(limit: int) -> str:
    """A regex of the whole numbers 1 to `limit`, written without leading zeros."""
    digits = str(limit)
    choices = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for position, digit in enumerate(digits):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = len(digits) - position - 1
            choices.append(f"{digits[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{rest}}}")
    choices.append(digits)
    return "|".join(choices)


class IdConverter(BaseConverter):
    """`<id:name>`: a database id, 1 to MAX_ID; any other path segment matches no route.

    Werkzeug's `int` takes any size, and an id beyond the column's range makes PostgreSQL
    (or SQLite's driver) fail instead of finding nothing. The range is in the regex rather
    than in `to_python`, so a larger number falls through to the other routes as an unknown
    URL does (the API's JSON 404) instead of ending the routing.
    """

    regex = _at_most(MAX_ID)
    weight = 50

    def to_python(self, value: str) -> int:
        return int(value)


class AnyPathConverter(PathConverter):
    """`<anypath:name>`: Werkzeug's `path`, line breaks included.

    `path` matches with `.`, which stops at a line break: a signed link that a mail client
    wrapped (`%0A` in it) would match no route and get the site's 404 page instead of the
    link's own.
    """

    regex = r"[^/][\s\S]*?"
