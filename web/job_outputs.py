"""Files that background jobs write for one user to download: order exports, document bundles.

A job writes its file whole to a scratch path (`writing`), then it is kept for a day where the
web process can offer it (`find`):

- `LocalOutputs` (APP_STORAGE=local): the job's folder under the instance path, as before;
  the next job of the kind removes the files older than a day (`remove_old`).
- `S3Outputs` (APP_STORAGE=s3): the key `downloads/NAME` in the documents bucket, because on
  AWS the render or jobs function's /tmp is not the web function's. The bucket's lifecycle
  rule (infra/cloudformation.json) expires `downloads/` after a day; these are not issued
  documents, so they carry no Object Lock retention and a job run again may replace its file.
  The browser reads them through a short-lived presigned URL.

`configure()` sets the kind in use (web/runtime.py, from the same setting as the documents'
storage).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from web import aws
from web.private_files import private_folder

# How long a job's file is offered for download.
KEEP = dt.timedelta(hours=24)
PREFIX = "downloads/"
CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "pdf": "application/pdf",
    "zip": "application/zip",
}


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


@dataclass(frozen=True)
class Kept:
    """A job's file while it is kept: a local file to send, or else a URL to send the browser
    to (exactly one of the two is set)."""

    path: Path | None = None
    url: str | None = None


class JobOutputs(Protocol):
    def writing(self, folder: Path, name: str) -> Any:
        """A context manager giving the path to write the file to, whole; the file is kept
        under `name` when the block ends without an error, if it was written."""
        ...

    def find(
        self, folder: Path, name: str, download_name: str, now: dt.datetime | None = None
    ) -> Kept | None:
        """The file written under `name`, while it is kept; None once removed or expired."""
        ...

    def remove_old(self, folder: Path, prefix: str, now: dt.datetime | None = None) -> int:
        """Remove the files of `prefix` kept longer than KEEP; return how many."""
        ...


def _plain(name: str) -> str:
    """The file name alone: a job's result never names a path."""
    plain = Path(name).name
    if not plain or plain in (".", ".."):
        raise ValueError(f"not a file name: {name!r}")
    return plain


def _expired(written: dt.datetime, now: dt.datetime | None) -> bool:
    return (now or dt.datetime.now(dt.UTC)) - written > KEEP


class LocalOutputs:
    """Files in the job's folder under the instance path, readable by Comptoir's user only."""

    @contextmanager
    def writing(self, folder: Path, name: str) -> Iterator[Path]:
        target = private_folder(folder) / _plain(name)
        partial = target.with_name(target.name + ".part")
        try:
            yield partial
            if partial.exists():
                partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def find(
        self, folder: Path, name: str, download_name: str, now: dt.datetime | None = None
    ) -> Kept | None:
        path = Path(folder) / _plain(name)
        if not path.is_file() or _expired(_modified(path), now):
            return None
        return Kept(path=path)

    def remove_old(self, folder: Path, prefix: str, now: dt.datetime | None = None) -> int:
        removed = 0
        for path in Path(folder).glob(f"{prefix}*"):
            if path.is_file() and _expired(_modified(path), now):
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _modified(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


class S3Outputs:
    """Keys under `downloads/` in the documents bucket, read through presigned URLs."""

    def __init__(self, settings: aws.AwsSettings) -> None:
        self.settings = settings

    @property
    def _s3(self) -> Any:
        return aws.client("s3", self.settings)

    @staticmethod
    def key(name: str) -> str:
        return PREFIX + _plain(name)

    @contextmanager
    def writing(self, folder: Path, name: str) -> Iterator[Path]:
        # Written to this function's own scratch space, then sent whole: a reader never
        # finds half a file, and a failed job leaves nothing.
        with tempfile.TemporaryDirectory(prefix="comptoir-output-") as scratch:
            path = Path(scratch) / _plain(name)
            yield path
            if path.exists():
                self._upload(path, name)

    def _upload(self, path: Path, name: str) -> None:
        digest = hashlib.sha256()
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
        with path.open("rb") as data:
            self._s3.put_object(
                Bucket=self.settings.bucket,
                Key=self.key(name),
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
                ContentType=content_type(name),
            )

    def find(
        self, folder: Path, name: str, download_name: str, now: dt.datetime | None = None
    ) -> Kept | None:
        from botocore.exceptions import ClientError

        key = self.key(name)
        try:
            head = self._s3.head_object(Bucket=self.settings.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        # The lifecycle rule removes a key some time after its day; it is not offered after.
        if _expired(head["LastModified"], now):
            return None
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", download_name) or "download"
        url = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.settings.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{safe_name}"',
                "ResponseContentType": content_type(name),
                "ResponseCacheControl": "private, no-store",
            },
            ExpiresIn=self.settings.url_seconds,
        )
        return Kept(url=str(url))

    def remove_old(self, folder: Path, prefix: str, now: dt.datetime | None = None) -> int:
        return 0  # the bucket's lifecycle rule expires downloads/ after a day


_configured: JobOutputs = LocalOutputs()


def configure(outputs: JobOutputs) -> None:
    """Set where jobs keep their files (web/runtime.py)."""
    global _configured
    _configured = outputs


def configured() -> JobOutputs:
    return _configured
