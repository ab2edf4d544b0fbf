"""Invoke the handlers the way AWS does, on one machine: `make aws-local` and the tests.

Never runs on AWS (there, Lambda's event source mappings and EventBridge rules do this). A
`Consumer` long-polls one SQS queue (a moto server on loopback), hands what it receives to the
handler as Lambda's SQS event, and deletes the records the handler did not report as failed,
as an event source mapping with `ReportBatchItemFailures` does; the failed ones come back after
their visibility timeout, and to the dead-letter queue after `maxReceiveCount` receives.
`scheduled_event` is an EventBridge schedule's event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from web import aws

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
ACCOUNT = "123456789012"


def sqs_event(messages: list[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's event for SQS messages as ReceiveMessage returned them."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def scheduled_event(rule: str, region: str = "eu-west-3") -> dict[str, Any]:
    """The event an EventBridge schedule rule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


class LambdaContext:
    """What handlers may read of Lambda's context object."""

    def __init__(self, function_name: str, timeout_ms: int = 900_000) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=timeout_ms)

    def get_remaining_time_in_millis(self) -> int:
        left = self._deadline - dt.datetime.now(dt.UTC)
        return max(0, int(left.total_seconds() * 1000))


def consume_once(
    settings: aws.AwsSettings,
    queue: str,
    handler: Handler,
    *,
    batch_size: int = 10,
    wait_seconds: int = 1,
    dead_letters: bool = False,
) -> tuple[int, int]:
    """Receive one batch, invoke the handler, delete what it did not report; return (received,
    failed). `dead_letters`: read the queue's dead-letter queue instead."""
    sqs = aws.client("sqs", settings)
    url = aws.dead_letter_url(settings, queue) if dead_letters else aws.queue_url(settings, queue)
    answer = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["All"],
    )
    messages = answer.get("Messages", [])
    if not messages:
        return 0, 0
    arn = f"arn:aws:sqs:{settings.region}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"
    try:
        result = handler(sqs_event(messages, arn, settings.region), LambdaContext(queue))
    except Exception:  # the whole invocation failed: every record comes back
        log.exception("the %s handler failed on a batch of %s", queue, len(messages))
        return len(messages), len(messages)
    failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ],
        )
    return len(messages), len(failed)


class Consumer(threading.Thread):
    """One concurrent execution of a queue's function: receive, invoke, delete, until stopped."""

    def __init__(
        self,
        settings: aws.AwsSettings,
        queue: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__(name=f"consumer-{queue}", daemon=True)
        self.settings = settings
        self.queue = queue
        self.handler = handler
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.stopping = threading.Event()
        self.received = 0
        self.failed = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                received, failed = consume_once(
                    self.settings, self.queue, self.handler, batch_size=self.batch_size
                )
            except Exception:  # moto restarting, a network blip: try again
                log.exception("consumer of %s: receive failed", self.queue)
                self.stopping.wait(1)
                continue
            self.received += received
            self.failed += failed
            if received and self.on_batch is not None:
                self.on_batch(received, failed)

    def stop(self) -> None:
        self.stopping.set()


# --- A moto server and the stack on it ----------------------------------------------------------

TEMPLATE = "infra/cloudformation.json"


def start_moto_server(port: int, log_path: str | None = None) -> Any:
    """Start `moto_server` on 127.0.0.1:port (a subprocess) and wait until it answers."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    executable = Path(sys.executable).with_name("moto_server")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return process
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto_server did not start on port {port}") from None
            time.sleep(0.1)


def deploy_stack(
    settings: aws.AwsSettings,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str | int] | None = None,
) -> dict[str, str]:
    """Create the CloudFormation stack and wait for it; return its outputs."""
    import time

    cloudformation = aws.client("cloudformation", settings)
    values = {"Prefix": settings.prefix, "BucketName": settings.bucket, **(parameters or {})}
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=template_body,
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in values.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + 60
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            _complete_buckets(settings, template_body)
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if "FAILED" in status or "ROLLBACK" in status or time.monotonic() > deadline:
            raise RuntimeError(f"stack {stack_name}: {status} {stack.get('StackStatusReason')}")
        time.sleep(0.2)


def _complete_buckets(settings: aws.AwsSettings, template_body: str) -> None:
    """Apply the bucket properties moto's CloudFormation skips, with the template's values.

    moto (5.x) creates an AWS::S3::Bucket without its VersioningConfiguration and
    ObjectLockEnabled (AWS applies both); set them through the S3 API, as they are written.
    """
    import json

    s3 = aws.client("s3", settings)
    for resource in json.loads(template_body)["Resources"].values():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        properties = resource["Properties"]
        if properties.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(
                Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        if properties.get("ObjectLockEnabled"):
            s3.put_object_lock_configuration(
                Bucket=settings.bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
            )
