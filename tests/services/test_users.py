"""Password hashing: production keeps argon2id's RFC 9106 low-memory profile.

The other tests hash with the cheapest parameters (tests/conftest.py): this file is where the
production hasher still runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from argon2 import profiles
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import TEST_HASHER, TEST_PASSWORD
from web.models import ApiToken, AuditEvent, utcnow
from web.models.enums import Role
from web.services import users
from web.services.errors import NotFound, ValidationFailed


@pytest.fixture()
def production_hasher() -> Iterator[None]:
    users.configure_hasher(users.DEFAULT_HASHER)
    yield
    users.configure_hasher(TEST_HASHER)


def test_production_hashes_with_the_rfc_9106_low_memory_profile() -> None:
    expected = profiles.RFC_9106_LOW_MEMORY
    assert users.DEFAULT_HASHER.type is expected.type
    assert users.DEFAULT_HASHER.time_cost == expected.time_cost == 3
    assert users.DEFAULT_HASHER.memory_cost == expected.memory_cost == 65536
    assert users.DEFAULT_HASHER.parallelism == expected.parallelism == 4


@pytest.mark.usefixtures("production_hasher")
def test_a_production_hash_logs_in_and_a_wrong_password_does_not(db_session: Session) -> None:
    user, _ = users.create_user(db_session, "hash@example.com", Role.VIEWER, TEST_PASSWORD)
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert users.authenticate(db_session, "hash@example.com", TEST_PASSWORD) is user
    assert users.authenticate(db_session, "hash@example.com", "not the password") is None
    assert users.authenticate(db_session, "nobody@example.com", TEST_PASSWORD) is None


def test_a_hash_with_other_parameters_is_redone_at_the_next_login(db_session: Session) -> None:
    user, _ = users.create_user(db_session, "old@example.com", Role.VIEWER, TEST_PASSWORD)
    user.password_hash = users.DEFAULT_HASHER.hash(TEST_PASSWORD)
    assert users.authenticate(db_session, "old@example.com", TEST_PASSWORD) is user
    assert user.password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert users.authenticate(db_session, "old@example.com", TEST_PASSWORD) is user


def _audits(session: Session, kind: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def test_a_second_user_with_the_same_e_mail_is_refused_on_the_e_mail(db_session: Session) -> None:
    users.create_user(db_session, "twice@example.com", Role.VIEWER, TEST_PASSWORD)
    with pytest.raises(ValidationFailed) as refused:
        users.create_user(db_session, "Twice@Example.com", Role.VIEWER, TEST_PASSWORD)
    assert str(refused.value) == "The user cannot be created."
    assert refused.value.errors == {"email": "A user with this e-mail already exists."}
    with pytest.raises(NotFound, match="user 999999 not found"):
        users.get_user(db_session, 999_999)


def test_password_changes_and_logouts_are_audited_with_who_did_them(db_session: Session) -> None:
    admin, _ = users.create_user(db_session, "admin@example.com", Role.ADMIN, TEST_PASSWORD)
    clerk, _ = users.create_user(db_session, "clerk@example.com", Role.VIEWER, TEST_PASSWORD)

    users.change_password(db_session, clerk, TEST_PASSWORD, "n" * 12, "n" * 12, address="10.0.0.1")
    users.reset_password(db_session, clerk, actor=admin)
    users.log_out_everywhere(db_session, clerk, actor=admin, address="10.0.0.2")
    db_session.flush()

    changed = _audits(db_session, "password.changed")
    assert [(a.actor_user_id, a.subject_user_id, a.address) for a in changed] == [
        (clerk.id, clerk.id, "10.0.0.1"),
        (admin.id, clerk.id, ""),
    ]
    (ended,) = _audits(db_session, "session.ended_everywhere")
    assert (ended.actor_user_id, ended.subject_user_id, ended.address) == (
        admin.id,
        clerk.id,
        "10.0.0.2",
    )
    assert ended.params == {"email": "clerk@example.com"}


def test_revoking_a_token_is_audited_once_and_it_stops_working(db_session: Session) -> None:
    admin, _ = users.create_user(db_session, "admin@example.com", Role.ADMIN, TEST_PASSWORD)
    clerk, _ = users.create_user(db_session, "clerk@example.com", Role.VIEWER, TEST_PASSWORD)
    secret = users.create_api_token(db_session, clerk, "scanner", actor=admin)
    token = users.find_api_token(db_session, secret)
    assert token is not None

    users.revoke_api_token(db_session, clerk, token.id, actor=admin, address="10.0.0.3")
    users.revoke_api_token(db_session, clerk, token.id, actor=admin)
    db_session.flush()

    (revoked,) = _audits(db_session, "api_token.revoked")
    assert (revoked.actor_user_id, revoked.subject_user_id, revoked.address) == (
        admin.id,
        clerk.id,
        "10.0.0.3",
    )
    assert revoked.params == {"email": "clerk@example.com", "label": "scanner"}
    assert users.find_api_token(db_session, secret) is None


def test_tokens_are_listed_newest_first_and_their_use_recorded_once_a_minute(
    db_session: Session,
) -> None:
    clerk, _ = users.create_user(db_session, "clerk@example.com", Role.VIEWER, TEST_PASSWORD)
    for label in ("first", "second"):
        users.create_api_token(db_session, clerk, label)
    first, second = sorted(db_session.scalars(select(ApiToken)), key=lambda t: t.id)
    # The first one made on a server whose clock ran ahead: created later, listed first.
    first.created_at = utcnow() + dt.timedelta(minutes=5)
    db_session.flush()
    assert [t.label for t in users.list_api_tokens(db_session)[clerk.id]] == ["first", "second"]

    assert users.token_use_is_stale(first)  # never used
    first.last_used_at = utcnow() - dt.timedelta(seconds=10)
    assert not users.token_use_is_stale(first)
    first.last_used_at = utcnow() - dt.timedelta(minutes=2)
    assert users.token_use_is_stale(first)
