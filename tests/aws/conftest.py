"""AWS against a real moto server process: real boto3 calls over HTTP to loopback.

One moto server for the session; each test gets its own stack (queues, dead-letter queues and
bucket under a fresh prefix), deployed from infra/cloudformation.json as on AWS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sync_lambdas import driver
from web import aws, queue
from web import config as app_config

# Short enough for a test to see a redelivery or a dead letter, as parameters of the template.
VISIBILITY_SECONDS = 2
MAX_RECEIVE_COUNT = 2


@dataclass(frozen=True)
class Stack:
    """A deployed stack of the template: its settings, and the app settings that use it."""

    settings: aws.AwsSettings
    outputs: dict[str, str]

    @property
    def app_settings(self) -> dict[str, Any]:
        """Settings (create_app overrides, sync_lambdas.runtime.use) for the AWS mode."""
        return {
            "QUEUE": "sqs",
            "STORAGE": "s3",
            "AWS_ENDPOINT_URL": self.settings.endpoint_url,
            "AWS_REGION": self.settings.region,
            "AWS_PREFIX": self.settings.prefix,
            "S3_BUCKET": self.settings.bucket,
        }

    def settings_on(self, database_url: str, encryption_key: str) -> dict[str, Any]:
        """Everything the web app and the Lambda runtime need to run in the AWS mode on a
        database every connection sees (a module's `parallel_database`)."""
        return {
            **self.app_settings,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key",
            "ENCRYPTION_KEY": encryption_key,
            "BASE_URL": "http://comptoir.test",
            "ALLOW_PRIVATE_SHOP_URLS": True,
        }

    def sqs(self) -> Any:
        return aws.client("sqs", self.settings)

    def s3(self) -> Any:
        return aws.client("s3", self.settings)

    def messages_in(self, queue_name: str, dead_letters: bool = False) -> int:
        """Messages waiting or in flight on the queue, as SQS counts them (approximate)."""
        url = (
            aws.dead_letter_url(self.settings, queue_name)
            if dead_letters
            else aws.queue_url(self.settings, queue_name)
        )
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture()
def aws_stack(moto_endpoint: str) -> Iterator[Stack]:
    """Queues and bucket of this test's own, from the CloudFormation template; committed work
    is announced to its SQS queues while the test runs."""
    name = f"t{uuid.uuid4().hex[:10]}"
    settings = aws.AwsSettings(
        region="eu-west-3", endpoint_url=moto_endpoint, prefix=name, bucket=f"{name}-documents"
    )
    template = (app_config.PROJECT_ROOT / driver.TEMPLATE).read_text()
    outputs = driver.deploy_stack(
        settings,
        name,
        template,
        {
            "MaxReceiveCount": MAX_RECEIVE_COUNT,
            "WorkerVisibilitySeconds": VISIBILITY_SECONDS,
            "JobVisibilitySeconds": VISIBILITY_SECONDS,
        },
    )
    queue.configure(queue.SqsBackend(settings))
    yield Stack(settings, outputs)
    queue.configure(queue.LocalBackend())
