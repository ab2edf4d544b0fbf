"""Case- and accent-insensitive text: "elodie", "Élodie" and "ÉLODIE" compare equal.

PostgreSQL folds with translate(lower(...)); SQLite's lower() folds ASCII only and it has
no translate(), so web.db registers fold_text() on every SQLite connection under
SQLITE_FOLD_FUNCTION, and search_fold() under SQLITE_SEARCH_FOLD_FUNCTION.

The desk's search also ignores the punctuation that joins parts of a reference: "MT-VASE-M",
"mtvasem" and "mt.vase/m" find the same orders, and PostgreSQL's trigram index sees one word
of seven letters instead of three short words each shared by most orders.
"""

from __future__ import annotations

ACCENT_FOLDS = {
    "a": "àáâãäå",
    "c": "ç",
    "e": "èéêë",
    "i": "ìíîï",
    "n": "ñ",
    "o": "òóôõöø",
    "u": "ùúûü",
    "y": "ýÿ",
}
LIGATURES = {"æ": "ae", "œ": "oe"}
_FOLD_MAP = {
    **{accented: plain for plain, letters in ACCENT_FOLDS.items() for accented in letters},
    **LIGATURES,
}
SQLITE_FOLD_FUNCTION = "comptoir_fold"
SQLITE_SEARCH_FOLD_FUNCTION = "comptoir_search_fold"

SEARCH_IGNORED = "-._/'‘’–—·"
"""Characters the search drops from the searched texts and from the terms: those that join
the parts of one reference, address or name (hyphens, dots, underscores, slashes,
apostrophes). The others stay: "#1042" is an order number, not any text holding 1042."""
_SEARCH_DROP = str.maketrans("", "", SEARCH_IGNORED)


def fold_text(text: str) -> str:
    """Lower-case the text and strip its accents, as the database search does."""
    return "".join(_FOLD_MAP.get(char, char) for char in text.lower())


def sqlite_fold(value: str | None) -> str | None:
    """fold_text() as an SQLite function (NULL stays NULL)."""
    return None if value is None else fold_text(value)


def search_fold(text: str) -> str:
    """fold_text() without the punctuation the search ignores (SEARCH_IGNORED)."""
    return fold_text(text).translate(_SEARCH_DROP)


def sqlite_search_fold(value: str | None) -> str | None:
    """search_fold() as an SQLite function (NULL stays NULL)."""
    return None if value is None else search_fold(value)
