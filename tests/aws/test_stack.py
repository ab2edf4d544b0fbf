"""The template deploys on moto: queues with their dead-letter queues, the locked bucket."""

from __future__ import annotations

import json
import socket

import pytest

from tests.aws.conftest import MAX_RECEIVE_COUNT, Stack
from web import aws, queue


def test_every_queue_has_its_dead_letter_queue_and_redrive_policy(aws_stack: Stack) -> None:
    sqs = aws_stack.sqs()
    for name in aws.ALL_QUEUES:
        url = aws.queue_url(aws_stack.settings, name)
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        dead_letter = aws.dead_letter_name(aws_stack.settings.prefix, name)
        assert redrive["deadLetterTargetArn"].endswith(f":{dead_letter}")
        assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT
        assert (attributes.get("FifoQueue") == "true") == (name in aws.FIFO_QUEUES)


def test_the_bucket_is_versioned_with_object_lock(aws_stack: Stack) -> None:
    s3 = aws_stack.s3()
    bucket = aws_stack.settings.bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"


def test_committed_work_reaches_its_queue_with_its_order_group(aws_stack: Stack) -> None:
    queue.announce_now([queue.Work(aws.PUSH, 41, "order-7"), queue.Work(aws.JOBS, 42)])
    sqs = aws_stack.sqs()
    pushed = sqs.receive_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.PUSH),
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=1,
    )["Messages"]
    assert [queue.Work.parse(m["Body"], aws.PUSH).id for m in pushed] == [41]
    assert pushed[0]["Attributes"]["MessageGroupId"] == "order-7"
    jobs = sqs.receive_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.JOBS), WaitTimeSeconds=1
    )["Messages"]
    assert [queue.Work.parse(m["Body"], aws.JOBS).id for m in jobs] == [42]


def test_a_send_to_an_unreachable_queue_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The row is committed already: the caller (a webhook's request) must still answer, and the
    # maintenance sweep announces the row later.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    settings = aws.AwsSettings(endpoint_url=f"http://127.0.0.1:{closed}", prefix="nowhere")
    queue.SqsBackend(settings).send([queue.Work(aws.INTAKE, 1, "1:order")])
    assert "could not announce intake work to SQS" in caplog.text
