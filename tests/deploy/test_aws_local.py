"""`make aws-local`: the AWS flow on one machine, its demo walked end to end against moto.

The script starts its own moto server, shop emulator and gunicorn; this test only reads what a
person could check from outside: the order in the database the desk shows, the tracking number
on the shop (its REST API), the invoice's and the delivery note's objects in the bucket against
their rows' hashes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import wait_until
from tests.deploy.conftest import ROOT, alive, free_port, stop
from web.db import make_engine
from web.documents.storage import sha256
from web.models import Document, Order
from web.models.enums import DocumentKind

pytestmark = pytest.mark.server

SCRIPT = ROOT / "bin" / "aws-local"
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"


def found(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return match


def test_the_demo_walks_webhook_sqs_intake_desk_shipment_push_and_s3(
    server_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "aws-local.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env.pop("DATABASE_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--bind",
                f"127.0.0.1:{free_port()}",
                "--database-url",
                server_database,
                "--workdir",
                str(tmp_path / "aws-local"),
                "--demo",
            ],
            cwd=tmp_path,  # the script finds the project itself
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def demo_over() -> bool:
            assert process.poll() is None, log.read_text()
            text = log.read_text()
            return "done: webhook" in text or re.search(r"^aws-local: ", text, re.M) is not None

        wait_until(demo_over, 240, "the demo to finish")
        output = log.read_text()
        assert "done: webhook → SQS → intake → desk → shipment → push → document on S3" in output
        endpoint = found(r"moto server on (http://127\.0\.0\.1:\d+)", output).group(1)
        shop_url = found(r"WooCommerce shop emulator on (http://127\.0\.0\.1:\d+)", output)[1]
        gunicorn_pid = int(found(r"gunicorn pid (\d+)", output).group(1))
        external_id = found(r"order (\d+) is on the desk", output).group(1)
        tracking = found(r"with parcel (MR\d+)", output).group(1)
        objects = re.findall(r"on S3: s3://([^/]+)/(\S+) ", output)
        assert len(objects) == 2, output  # the invoice, then the delivery note
        bucket = objects[0][0]
        # The handlers ran as Lambda batches, printed one line each.
        assert re.search(r"\[lambda intake#\d\s*\] batch of \d+ record\(s\), 0 failed", output)
        assert re.search(r"\[lambda push#1\s*\] batch of \d+ record\(s\), 0 failed", output)
        assert re.search(r"\[lambda render#1\s*\] batch of 1 record\(s\), 0 failed", output)

        engine = make_engine(server_database)
        try:
            with Session(engine) as session:
                order = session.scalars(select(Order).where(Order.external_id == external_id)).one()
                documents = session.scalars(
                    select(Document).where(Document.order_id == order.id).order_by(Document.id)
                ).all()
                rows = [(d.kind, d.pdf_storage_key, d.pdf_sha256) for d in documents]
        finally:
            engine.dispose()

        # The shop has the parcel, and the order completed, as the push Lambda wrote them.
        auth = ("ck_comptoir_test", "cs_comptoir_test")
        items = httpx.get(
            f"{shop_url}{TRACKING_API}/orders/{external_id}/shipment-trackings", auth=auth
        ).json()
        assert [item["tracking_number"] for item in items] == [tracking]
        shop_order = httpx.get(f"{shop_url}/wp-json/wc/v3/orders/{external_id}", auth=auth).json()
        assert shop_order["status"] == "completed"

        # The invoice (rendered by the render Lambda's job) and the delivery note are in the
        # bucket, byte for byte what their rows' hashes say, locked.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-3")
        assert [kind for kind, _, _ in rows] == [DocumentKind.INVOICE, DocumentKind.DELIVERY_NOTE]
        assert [key for _, key, _ in rows] == [key for _, key in objects]
        for _, key, digest in rows:
            obj = s3.get_object(Bucket=bucket, Key=key)
            body = obj["Body"].read()
            assert body.startswith(b"%PDF") and sha256(body) == digest
            assert obj["ObjectLockMode"] == "COMPLIANCE"

        assert stop(process, signal.SIGINT) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert "aws-local: stopped" in output
    wait_until(lambda: not alive(gunicorn_pid), 10, "gunicorn to end")

    def moto_gone() -> bool:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
        except httpx.HTTPError:
            return True
        return False

    wait_until(moto_gone, 10, "the moto server to end")
