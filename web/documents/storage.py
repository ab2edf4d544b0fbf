"""Where issued documents' files live: write-once storage behind one small interface.

An issued document never changes, so a key is written once and never replaced: a second
`put` of the same key is refused. The local folder backend keeps the files under the
instance folder, readable by Comptoir's user only; the S3 backend (AWS) writes each key once
with a conditional put, locks it (Object Lock, compliance mode, 10 years by default) and lets
browsers read it through short-lived presigned URLs.

`configure()` sets the storage the services use (create_app calls it, like crypto's key).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any, Protocol

from web import aws
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


class KeyChanged(StorageError):
    """What is stored under the key no longer has the SHA-256 it was issued with."""


class DocumentStorage(Protocol):
    """Write-once storage of documents' bytes, by key ("delivery_note/2026/BL-….pdf")."""

    def put(self, key: str, data: bytes) -> None:
        """Store the bytes under a new key; raise KeyExists if the key is taken."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under the key; raise KeyMissing if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def read_url(
        self, key: str, filename: str, *, sha256: str | None = None, inline: bool = False
    ) -> str | None:
        """A short-lived URL a browser may read the file from, or None: serve the bytes.

        With `sha256`, the URL is given only for bytes that have that hash (KeyChanged
        otherwise, KeyMissing if there are none); `inline` asks the browser to show the
        file rather than save it.
        """
        ...


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

    def read_url(
        self, key: str, filename: str, *, sha256: str | None = None, inline: bool = False
    ) -> str | None:
        return None  # only Comptoir reads this folder: the view serves the bytes


def _content_type(key: str) -> str:
    return "application/pdf" if key.endswith(".pdf") else "application/octet-stream"


def _safe_filename(filename: str) -> str:
    """The name for a Content-Disposition header: plain characters only."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "document.pdf"


# What S3 answers for a key with nothing under it (a HEAD has no body: only the status).
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


class S3Storage:
    """Objects in an S3 bucket with versioning and Object Lock (infra/cloudformation.json).

    `put` is a conditional write (If-None-Match: *): S3 itself refuses a second write of a
    key, whoever makes it. Each object carries its SHA-256 (S3 checks it on receipt and
    keeps it) and a compliance-mode retention: not even the account's root can delete or
    replace that version before `retention_years` have passed.

    A browser reads an object through a presigned URL to one version: `read_url` looks the
    object up first (a HEAD, not its bytes), and gives the URL only if the SHA-256 that S3
    kept is the one the document was issued with. Whatever S3 answers besides the object
    (access denied, no bucket, no connection) is a StorageError, never a botocore one.
    """

    def __init__(self, settings: aws.AwsSettings) -> None:
        self.settings = settings
        self.bucket = settings.bucket

    @property
    def _s3(self) -> Any:
        return aws.client("s3", self.settings)

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = check_key(key)
        retain_until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
            days=366 * self.settings.retention_years
        )
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                IfNoneMatch="*",
                # Object Lock puts need Content-MD5 or x-amz-sdk-checksum-algorithm: the
                # algorithm named sends the latter (S3 and moto refuse the put without it).
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
                ContentType=_content_type(key),
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise KeyExists(f"already stored: {key}") from None
            raise StorageError(f"S3 refused to store {key}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 could not be reached to store {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        key = check_key(key)
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            return bytes(answer["Body"].read())
        except ClientError as exc:
            code = _error_code(exc)
            if code in MISSING_CODES:
                raise KeyMissing(f"nothing stored under {key}") from None
            raise StorageError(f"S3 refused to read {key}: {code or exc}") from exc
        except BotoCoreError as exc:  # no connection, a body cut short, a checksum wrong
            raise StorageError(f"S3 could not be read for {key}: {exc}") from exc

    def _head(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(
                self._s3.head_object(Bucket=self.bucket, Key=check_key(key), ChecksumMode="ENABLED")
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code in MISSING_CODES:
                raise KeyMissing(f"nothing stored under {key}") from None
            raise StorageError(f"S3 refused to look up {key}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 could not be reached to look up {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except KeyMissing:
            return False
        return True

    def read_url(
        self, key: str, filename: str, *, sha256: str | None = None, inline: bool = False
    ) -> str | None:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "ResponseContentType": _content_type(key),
            "ResponseCacheControl": "private, no-store",
            "ResponseContentDisposition": (
                f'{"inline" if inline else "attachment"}; filename="{_safe_filename(filename)}"'
            ),
        }
        if sha256 is not None:
            head = self._head(key)
            kept = str(head.get("ChecksumSHA256") or "")
            if not kept or "-" in kept:
                # No whole-object SHA-256 kept (an object copied in by hand, a multipart
                # upload): only its bytes can be checked, so the caller serves them.
                return None
            if base64.b64decode(kept).hex() != sha256:
                raise KeyChanged(f"{key} no longer holds the bytes issued")
            if head.get("VersionId"):
                # The URL reads the version checked, whatever is written over it meanwhile.
                params["VersionId"] = head["VersionId"]
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.settings.url_seconds
            )
        )


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


_configured: DocumentStorage | None = None


def configure(storage: DocumentStorage | None) -> None:
    """Set the storage that services use when they are given none (None: no storage yet)."""
    global _configured
    _configured = storage


def configured_or_none() -> DocumentStorage | None:
    """The storage set by configure(), if any (to set it back later)."""
    return _configured


def configured() -> DocumentStorage:
    """The storage set by configure()."""
    if _configured is None:
        raise StorageError("no document storage configured (create_app configures one)")
    return _configured
