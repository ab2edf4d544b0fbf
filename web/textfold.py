"""Case- and accent-insensitive text: "elodie", "Élodie" and "ÉLODIE" compare equal.

PostgreSQL folds with translate(lower(...)); SQLite's lower() folds ASCII only and it has
no translate(), so web.db registers fold_text() on every SQLite connection under
SQLITE_FOLD_FUNCTION.
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


def fold_text(text: str) -> str:
    """Lower-case the text and strip its accents, as the database search does."""
    return "".join(_FOLD_MAP.get(char, char) for char in text.lower())


def sqlite_fold(value: str | None) -> str | None:
    """fold_text() as an SQLite function (NULL stays NULL)."""
    return None if value is None else fold_text(value)
