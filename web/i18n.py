"""Marking strings for translation outside Flask (services translate nothing themselves)."""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a message for extraction; views translate it with gettext when shown."""
    return message
