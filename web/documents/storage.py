"""Where issued documents' files live: write-once storage behind one small interface.

An issued document never changes, so a key is written once and never replaced: a second
`put` of the same key is refused. The local folder backend keeps the files under the
instance folder, readable by Comptoir's user only; an S3 backend (Object Lock) will sit
behind the same interface.

`configure()` sets the storage the services use (create_app calls it, like crypto's key).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from web.private_files import open_private, private_folder

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
MAX_KEY_LENGTH = 500


class StorageError(Exception):
    """Root of the storage errors."""


class KeyExists(StorageError):
    """The key was written already: stored documents are never replaced."""


class KeyMissing(StorageError):
    """Nothing is stored under the key."""


class InvalidKey(StorageError):
    """The key is not a relative path of plain names."""


class DocumentStorage(Protocol):
    """Write-once storage of documents' bytes, by key ("delivery_note/2026/BL-….pdf")."""

    def put(self, key: str, data: bytes) -> None:
        """Store the bytes under a new key; raise KeyExists if the key is taken."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under the key; raise KeyMissing if there are none."""
        ...

    def exists(self, key: str) -> bool: ...


def sha256(data: bytes) -> str:
    """The hex SHA-256 kept in the document row, to check the stored bytes later."""
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    """The key, if it is a relative path of plain names (no "..", no leading "/")."""
    if len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key) or ".." in key:
        raise InvalidKey(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    """Files under a folder of ours: folders 0700, files 0600, each written once."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        # One at a time: mkdir(parents=True) would give the folders between the default mode.
        folder = private_folder(self.root)
        for name in key.split("/")[:-1]:
            folder = private_folder(folder / name)
        # Written whole to a temporary name, then linked to the key: a reader never sees
        # half a file, and link() refuses a name that exists, so two writers cannot both
        # win and nobody replaces a stored document.
        temporary = folder / f".{target.name}.{secrets.token_hex(8)}.tmp"
        try:
            with open_private(temporary, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise KeyExists(f"already stored: {key}") from None
        finally:
            temporary.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyMissing(f"nothing stored under {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


_configured: DocumentStorage | None = None


def configure(storage: DocumentStorage) -> None:
    """Set the storage that services use when they are given none."""
    global _configured
    _configured = storage


def configured() -> DocumentStorage:
    """The storage set by configure()."""
    if _configured is None:
        raise StorageError("no document storage configured (create_app configures one)")
    return _configured
