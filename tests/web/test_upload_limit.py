"""No request body above MAX_CONTENT_LENGTH is read: an oversized upload is a 413 page."""

from __future__ import annotations

import io
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from web.models import Job, User


def test_an_oversized_upload_is_refused_before_it_is_read(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    login_as("manager")
    token = csrf_token(client, "/shipping/")
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    body = b"order;tracking\r\n" + b"1001;6A1\r\n" * (limit // 10 + 1)
    response = client.post(
        "/shipping/tracking-import",
        data={"csrf_token": token, "file": (io.BytesIO(body), "huge.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "trop volumineux" in response.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(Job)) == 0
