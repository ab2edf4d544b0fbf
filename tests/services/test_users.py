"""Password hashing: production keeps argon2id's RFC 9106 low-memory profile.

The other tests hash with the cheapest parameters (tests/conftest.py): this file is where the
production hasher still runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import profiles
from sqlalchemy.orm import Session

from tests.conftest import TEST_HASHER, TEST_PASSWORD
from web.models.enums import Role
from web.services import users


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
