"""Encryption at rest for shop credentials (Fernet, key from the environment)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, TypeDecorator
from sqlalchemy.engine import Dialect

from web.private_files import private_folder, write_private

log = logging.getLogger(__name__)

_fernet: MultiFernet | None = None


class EncryptionNotConfigured(RuntimeError):
    """No encryption key was configured before a secret was read or written."""


def configure(keys: str | None, instance_path: str | Path) -> None:
    """Install the Fernet keys: `keys` is a comma-separated list, newest first.

    Without a key (local development) a key is generated once into the instance
    folder so restarts can still read what was written, and a warning says so.
    """
    global _fernet
    if not keys:
        key_file = Path(instance_path) / "dev-encryption.key"
        if not key_file.exists():
            private_folder(key_file.parent)
            write_private(key_file, Fernet.generate_key())
        log.warning(
            "APP_ENCRYPTION_KEY is not set: shop credentials are encrypted with the "
            "development key in %s. Set APP_ENCRYPTION_KEY in production.",
            key_file,
        )
        keys = key_file.read_text().strip()
    _fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


def _require() -> MultiFernet:
    if _fernet is None:
        raise EncryptionNotConfigured("call web.crypto.configure() before using secrets")
    return _fernet


def encrypt(plaintext: str) -> str:
    """Encrypt a secret for storage."""
    return _require().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a stored secret; a wrong key is an error, never garbage."""
    try:
        return _require().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise EncryptionNotConfigured("stored secret cannot be decrypted with this key") from exc


class EncryptedText(TypeDecorator[str]):
    """A string column stored as a Fernet token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(value)
