"""The documents page: who sees it, filters in the URL, htmx swaps, and the bulk download job."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token, log_in
from tests.documents.conftest import complete_company, relay_order, ship
from web import queue
from web.documents import delivery_notes, invoices
from web.documents.storage import LocalStorage
from web.models import Document, Job, User
from web.models.enums import JobState, Role
from web.services.timeline import Actor

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
ACTOR = Actor.system("test")


@pytest.fixture()
def storage(app: Flask) -> LocalStorage:
    """The app's document storage: where the page's downloads read."""
    return LocalStorage(Path(app.instance_path) / "documents")


@pytest.fixture()
def documents(db_session: Session, storage: LocalStorage) -> dict[str, Document]:
    """Two invoices and a delivery note, committed."""
    complete_company(db_session)
    made = {
        "first": invoices.issue_invoice(
            db_session, relay_order(db_session), ACTOR, storage=storage
        ),
        "second": invoices.issue_invoice(
            db_session, relay_order(db_session), ACTOR, storage=storage
        ),
    }
    order = relay_order(db_session)
    made["note"] = delivery_notes.issue_delivery_note(
        db_session, ship(db_session, order, {"MUG-BLEU": 1}), ACTOR, storage=storage
    )
    db_session.commit()
    return made


def listed_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'name="ids" value="(\d+)" form="bulk-form"', html)]


def post(client: FlaskClient, data: dict[str, Any], htmx: bool = True) -> Any:
    token = csrf_token(client, "/documents/")
    if htmx:
        return client.post(
            "/documents/download", data=data, headers={**PARTIAL, "X-CSRFToken": token}
        )
    return client.post("/documents/download", data={**data, "csrf_token": token})


def run_job(
    client: FlaskClient, session_factory: sessionmaker[Session], db_session: Session, data: Any
) -> Job:
    response = post(client, data)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    job = db_session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert job is not None and job.state == JobState.DONE, job and job.error
    return job


# --- The page --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER, Role.VIEWER])
def test_the_desk_roles_list_every_document_newest_first_with_its_figures(
    client: FlaskClient,
    login_as: Callable[..., User],
    documents: dict[str, Document],
    role: Role,
) -> None:
    login_as(role)
    html = client.get("/documents/").get_data(as_text=True)
    first, second, note = documents["first"], documents["second"], documents["note"]
    assert listed_ids(html) == [note.id, second.id, first.id]
    assert f'href="{"/documents/"}"' in html and 'aria-current="page"' in html  # the nav entry
    row = html[html.index(f'value="{first.id}"') :].split("</tr>")[0]
    assert first.reference in row and "Facture" in row
    assert f'href="/orders/{first.order_id}"' in row and first.order.number in row
    assert "Marie Curie" in row
    for amount in (first.total_net, first.total_tax, first.total_gross):  # HT, TVA, TTC
        assert f"{amount}".replace(".", ",") + "\u00a0€" in row
    assert f'href="/documents/{first.id}/pdf"' in row
    note_row = html[html.index(f'value="{note.id}"') :].split("</tr>")[0]
    assert "Bon de livraison" in note_row


def test_the_warehouse_has_no_documents_page_nor_its_downloads(
    client: FlaskClient, login_as: Callable[..., User], documents: dict[str, Document]
) -> None:
    login_as(Role.WAREHOUSE)
    assert client.get("/documents/").status_code == 403
    assert 'href="/documents/"' not in client.get("/warehouse/").get_data(as_text=True)
    token = csrf_token(client, "/warehouse/")
    refused = client.post(
        "/documents/download",
        data={"ids": [str(documents["first"].id)], "format": "zip"},
        headers={**PARTIAL, "X-CSRFToken": token},
    )
    assert refused.status_code == 403


def test_filters_live_in_the_url_and_htmx_gets_the_results_only(
    client: FlaskClient, login_as: Callable[..., User], documents: dict[str, Document]
) -> None:
    login_as(Role.MANAGER)
    year = documents["note"].issue_date.year  # type: ignore[union-attr]
    path = f"/documents/?kind=invoice&series=FA-{year}"

    fragment = client.get(path, headers=PARTIAL)
    full = client.get(path, headers=BOOSTED).get_data(as_text=True)

    html = fragment.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="results"')
    assert "HX-Request" in fragment.headers.get("Vary", "")
    assert listed_ids(html) == [documents["second"].id, documents["first"].id]
    assert "<html" in full and 'hx-push-url="true"' in full
    assert '<option value="invoice" selected>' in full
    assert f'<option value="FA-{year}" selected>' in full
    # The bar carries the filters, so "all matching" downloads what the list shows.
    assert '<input type="hidden" form="bulk-form" name="kind" value="invoice">' in html
    searched = client.get("/documents/?q=curie+" + documents["note"].reference, headers=PARTIAL)
    assert listed_ids(searched.get_data(as_text=True)) == [documents["note"].id]


def test_bad_filters_are_named_ignored_and_nothing_matching_says_so(
    client: FlaskClient, login_as: Callable[..., User], documents: dict[str, Document]
) -> None:
    login_as(Role.VIEWER)
    html = client.get("/documents/?kind=receipt&date_from=yesterday").get_data(as_text=True)
    assert len(listed_ids(html)) == 3
    assert 'id="filter-kind" name="kind" aria-invalid="true"' in html
    empty = client.get("/documents/?date_from=2999-01-01").get_data(as_text=True)
    assert listed_ids(empty) == [] and "Aucun document ne correspond" in empty


# --- The download job ------------------------------------------------------------------------


def test_a_zip_of_the_chosen_documents_for_its_creator_and_admins_only(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    storage: LocalStorage,
    documents: dict[str, Document],
) -> None:
    login_as(Role.VIEWER)
    chosen = [documents["first"], documents["note"]]
    started = post(client, {"ids": [str(d.id) for d in chosen], "format": "zip"})
    assert "<html" not in started.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in started.get_data(as_text=True)  # polls until done

    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    job = db_session.scalars(select(Job).where(Job.kind == "documents.download")).one()
    assert job.state == JobState.DONE and job.progress == job.total == 2
    status = client.get(f"/documents/download/{job.id}", headers=PARTIAL).get_data(as_text=True)
    assert f'href="/documents/download/{job.id}/file"' in status
    assert "2 documents prêts." in status
    assert "every 1s" not in status

    download = client.get(f"/documents/download/{job.id}/file")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=documents-")
    assert "no-store" in download.headers["Cache-Control"]
    with zipfile.ZipFile(io.BytesIO(download.data)) as archive:
        assert sorted(archive.namelist()) == sorted(f"{d.reference}.pdf" for d in chosen)
        note = documents["note"]
        assert archive.read(f"{note.reference}.pdf") == storage.get(note.pdf_storage_key or "")
    path = Path(job.payload["folder"]) / job.result["file"]
    assert path.parent == Path(app.instance_path) / "exports"
    assert path.stat().st_mode & 0o777 == 0o600

    for role, expected in ((Role.MANAGER, 403), (Role.ADMIN, 200)):
        with app.test_client() as each:
            log_in(each, make_user(role).email)
            assert each.get(f"/documents/download/{job.id}/file").status_code == expected

    stale = path.stat().st_mtime - 25 * 3600
    os.utime(path, (stale, stale))
    assert client.get(f"/documents/download/{job.id}/file").status_code == 410


def test_all_matching_as_one_pdf_refuses_a_damaged_document_by_its_reference(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    storage: LocalStorage,
    documents: dict[str, Document],
) -> None:
    login_as(Role.MANAGER)
    first, second = documents["first"], documents["second"]
    damaged = storage.root / (first.pdf_storage_key or "")
    damaged.write_bytes(damaged.read_bytes() + b"%tampered\n")
    html = client.get("/documents/?kind=invoice").get_data(as_text=True)
    upto = re.search(r'name="upto" value="(\d+)"', html)
    assert upto is not None
    # Issued after the page was shown: not one of the documents "all matching" meant.
    invoices.issue_invoice(db_session, relay_order(db_session), ACTOR, storage=storage)
    db_session.commit()

    job = run_job(
        client,
        session_factory,
        db_session,
        {"scope": "all", "kind": "invoice", "upto": upto[1], "format": "pdf"},
    )

    assert job.result["done"] == 1 and job.result["refused_count"] == 1
    status = client.get(f"/documents/download/{job.id}", headers=PARTIAL).get_data(as_text=True)
    assert first.reference in status and "ne correspond plus" in status
    merged = client.get(f"/documents/download/{job.id}/file")
    assert merged.mimetype == "application/pdf"
    pages = pypdf.PdfReader(io.BytesIO(merged.data)).pages
    assert second.reference in "".join(page.extract_text() for page in pages)
    assert first.reference not in "".join(page.extract_text() for page in pages)


def test_without_htmx_the_form_ends_on_the_job_page(
    client: FlaskClient, login_as: Callable[..., User], documents: dict[str, Document]
) -> None:
    login_as(Role.MANAGER)
    response = post(client, {"ids": [str(documents["first"].id)], "format": "pdf"}, htmx=False)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<html" in page and "Télécharger" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "zip"}, "Sélectionnez au moins un document."),
        ({"ids": ["1"], "format": "tar"}, "Choisissez un seul PDF ou un ZIP de PDF."),
        ({"scope": "all", "kind": "credit_note", "format": "zip"}, "Sélectionnez au moins"),
    ],
)
def test_a_bad_request_is_a_form_error_and_queues_nothing(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    documents: dict[str, Document],
    data: dict[str, Any],
    message: str,
) -> None:
    login_as(Role.MANAGER)
    response = post(client, data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db_session.scalars(select(Job)).all() == []


def test_the_job_of_another_kind_or_id_is_not_found(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    login_as(Role.ADMIN)
    other = Job(kind="orders.export", payload={"format": "csv"}, state=JobState.DONE)
    db_session.add(other)
    db_session.commit()
    for path in (f"/documents/download/{other.id}", f"/documents/download/{other.id}/file"):
        assert client.get(path).status_code == 404
    for odd in ("0", "2147483648", "x"):
        assert client.get(f"/documents/download/{odd}").status_code == 404
    # No CSRF token: refused before anything is queued.
    refused = client.post("/documents/download", data={"ids": ["1"], "format": "zip"})
    assert refused.status_code == 400
    assert db_session.scalars(select(Job).where(Job.kind == "documents.download")).all() == []
