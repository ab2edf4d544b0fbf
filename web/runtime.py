"""What every Comptoir process sets up before it works: the web app, `flask` commands and the
Lambda handlers of sync_lambdas/ alike.

The settings choose the backends: `QUEUE=local|sqs` (web/queue.py) and `STORAGE=local|s3`
(web/documents/storage.py, and web/job_outputs.py for the files jobs write); the rest
(encryption key, shop URL policy, signed links, job handlers) is the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from web import aws, crypto, job_outputs, jobs, queue
from web.connectors import addresses
from web.documents import links as document_links
from web.documents import storage as document_storage
from web.services import outbox


class ConfigurationError(RuntimeError):
    """A setting names a backend that does not exist."""


def configure(config: Mapping[str, Any], instance_path: Path) -> None:
    """Configure the services of this process from the settings (web/config.py's load)."""
    crypto.configure(config["ENCRYPTION_KEY"], instance_path)
    addresses.configure(allow_private=bool(config["ALLOW_PRIVATE_SHOP_URLS"]))
    document_storage.configure(storage_from(config, instance_path))
    job_outputs.configure(outputs_from(config))
    document_links.configure(config["SECRET_KEY"], config["BASE_URL"])
    queue.configure(queue_backend_from(config))
    outbox.configure(dt.timedelta(seconds=float(config["OUTBOX_LEASE_SECONDS"])))
    jobs.register_all()


def storage_from(
    config: Mapping[str, Any], instance_path: Path
) -> document_storage.DocumentStorage:
    """The document storage the settings name."""
    kind = str(config.get("STORAGE") or "local").lower()
    if kind == "local":
        return document_storage.LocalStorage(instance_path / "documents")
    if kind == "s3":
        return document_storage.S3Storage(aws.AwsSettings.from_config(config))
    raise ConfigurationError(f"APP_STORAGE must be local or s3, not {kind!r}")


def outputs_from(config: Mapping[str, Any]) -> job_outputs.JobOutputs:
    """Where jobs keep the files users download (exports, bundles): beside the documents."""
    kind = str(config.get("STORAGE") or "local").lower()
    if kind == "local":
        return job_outputs.LocalOutputs()
    if kind == "s3":
        return job_outputs.S3Outputs(aws.AwsSettings.from_config(config))
    raise ConfigurationError(f"APP_STORAGE must be local or s3, not {kind!r}")


def queue_backend_from(config: Mapping[str, Any]) -> queue.Backend:
    """The queue backend the settings name."""
    kind = str(config.get("QUEUE") or "local").lower()
    if kind == "local":
        return queue.LocalBackend()
    if kind == "sqs":
        return queue.SqsBackend(aws.AwsSettings.from_config(config))
    raise ConfigurationError(f"APP_QUEUE must be local or sqs, not {kind!r}")


def freeze_start_up() -> None:
    """Put what start-up made (modules, the app, its settings) out of the garbage collector's
    reach, once per server process, after the app is built.

    A full collection walks every object the process holds: measured on the 2-core machine,
    about 80 ms, once every few hundred requests, a pause that landed on whichever request
    was running (the warehouse queue's p95 went from 27 to 145 ms in a 30-request sample).
    Frozen, start-up's objects are skipped and a full collection takes 2–3 ms. Only for a
    process that builds one app: a frozen object is never collected.
    """
    gc.collect()
    gc.freeze()
