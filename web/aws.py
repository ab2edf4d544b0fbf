"""AWS clients and names, from the settings: one place that knows endpoints and queue names.

Comptoir's queues (infra/cloudformation.json creates them, `AWS_PREFIX` names them):

    PREFIX-intake.fifo   inbox event ids, grouped by order (sync_lambdas/intake.py)
    PREFIX-push.fifo     outbox message ids, grouped by order (sync_lambdas/push.py)
    PREFIX-jobs          job ids of background jobs (sync_lambdas/jobs.py)
    PREFIX-render        job ids of jobs that render PDFs (sync_lambdas/render.py)
    PREFIX-poll          the poll schedule's half-ticks, delayed 30 s (sync_lambdas/poll.py)

each with a dead-letter queue named PREFIX-NAME-dlq (".fifo" kept last for FIFO queues). The
first four carry row ids (`QUEUES`: web/queue.py announces them, their dead letters go to the
sync issues page); the poll queue carries no row, only the time to poll again.
Tests and `make aws-local` point `AWS_ENDPOINT_URL` at a moto server on loopback.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INTAKE = "intake"
PUSH = "push"
JOBS = "jobs"
RENDER = "render"
POLL = "poll"
QUEUES = (INTAKE, PUSH, JOBS, RENDER)
# Every queue the stack creates: the work queues and the poll function's own.
ALL_QUEUES = (*QUEUES, POLL)
FIFO_QUEUES = frozenset({INTAKE, PUSH})


def queue_name(prefix: str, queue: str) -> str:
    """The SQS name of one of Comptoir's queues."""
    return f"{prefix}-{queue}.fifo" if queue in FIFO_QUEUES else f"{prefix}-{queue}"


def dead_letter_name(prefix: str, queue: str) -> str:
    """The SQS name of a queue's dead-letter queue (FIFO for a FIFO queue, as SQS requires)."""
    return f"{prefix}-{queue}-dlq.fifo" if queue in FIFO_QUEUES else f"{prefix}-{queue}-dlq"


@dataclass(frozen=True)
class AwsSettings:
    """What every AWS client of ours needs, read once from the app's settings."""

    region: str = "eu-west-3"
    endpoint_url: str = ""
    prefix: str = "comptoir"
    bucket: str = "comptoir-documents"
    retention_years: int = 10
    url_seconds: int = 300

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AwsSettings:
        return cls(
            region=str(config.get("AWS_REGION") or "eu-west-3"),
            endpoint_url=str(config.get("AWS_ENDPOINT_URL") or ""),
            prefix=str(config.get("AWS_PREFIX") or "comptoir"),
            bucket=str(config.get("S3_BUCKET") or "comptoir-documents"),
            retention_years=int(config.get("S3_RETENTION_YEARS") or 10),
            url_seconds=int(config.get("S3_URL_SECONDS") or 300),
        )


# boto3 clients are thread-safe once made, but making them is not: one lock, one per service.
_lock = threading.Lock()


@functools.cache
def _client(service: str, region: str, endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    # A webhook's request sends its message after the commit: an unreachable endpoint must cost
    # seconds, not botocore's default minute per attempt (the maintenance sweep sends it later).
    # Reads stay above SQS's longest long poll (20 s).
    config = Config(
        connect_timeout=3, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}
    )
    with _lock:
        return boto3.session.Session().client(
            service, region_name=region, endpoint_url=endpoint_url or None, config=config
        )


def client(service: str, settings: AwsSettings) -> Any:
    """A boto3 client of the service ("sqs", "s3"), made once per settings."""
    return _client(service, settings.region, settings.endpoint_url)


@functools.cache
def _queue_url(region: str, endpoint_url: str, name: str) -> str:
    sqs = _client("sqs", region, endpoint_url)
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def queue_url(settings: AwsSettings, queue: str) -> str:
    """The URL of one of Comptoir's queues (looked up once)."""
    return _queue_url(settings.region, settings.endpoint_url, queue_name(settings.prefix, queue))


def dead_letter_url(settings: AwsSettings, queue: str) -> str:
    """The URL of a queue's dead-letter queue (looked up once)."""
    name = dead_letter_name(settings.prefix, queue)
    return _queue_url(settings.region, settings.endpoint_url, name)
