"""Password spraying against the login form, at the thresholds of web.services.login_throttle.

Many accounts (real and guessed) × a few common passwords from several client addresses, and
one account × many passwords. The app's clock is frozen (`comptoir.clock`) and moved by the
test. Counted at the end: logins with a wrong password (must be 0), answers heard and
refused per address and per account against FREE_FAILURES, and the owners still getting in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD
from tests.reliability.conftest import drill_size
from tests.views.test_login_throttle import Clock, attempt, clock  # noqa: F401 F811
from web.models import User
from web.services.login_throttle import ACCOUNT, ADDRESS, FREE_FAILURES, MAX_WAIT

COMMON_PASSWORDS = ["azerty123", "Motdepasse1!", "Soleil2026", "123456789a", "Bonjour2026!"]


def test_many_accounts_by_few_passwords_from_several_addresses(
    client: FlaskClient,
    clock: Clock,  # noqa: F811
    make_user: Callable[..., User],  # noqa: F811
) -> None:
    # Reduced: 22 attempts from one address, just past its threshold (each one heard costs an
    # Argon2 verification, on purpose).
    accounts = drill_size(11, 100)
    passwords = COMMON_PASSWORDS[: drill_size(2, 5)]
    addresses = [f"198.51.100.{n}" for n in range(1, drill_size(1, 5) + 1)]
    real = [make_user().email for _ in range(drill_size(2, 20))]
    emails = real + [f"devine{n}@example.com" for n in range(accounts - len(real))]

    answers: dict[str, list[int]] = {address: [] for address in addresses}
    for round_, password in enumerate(passwords):
        for n, email in enumerate(emails):
            address = addresses[(round_ * len(emails) + n) % len(addresses)]
            answers[address].append(attempt(client, email, password, address).status_code)

    heard = FREE_FAILURES[ADDRESS] + 1  # the failure that starts the wait is still heard
    for address, statuses in answers.items():
        assert 303 not in statuses  # nobody logged in with a wrong password
        expected = [400] * min(len(statuses), heard) + [429] * max(0, len(statuses) - heard)
        assert statuses == expected, (address, Counter(statuses))
    # Each account saw at most len(passwords) ≤ 5 failures: none of them is locked, so every
    # owner gets in at once from an address nobody sprayed from.
    for email in real:
        welcome = attempt(client, email, TEST_PASSWORD, address="192.0.2.10")
        assert welcome.status_code == 303, email
        client.post("/logout")
    # The sprayers' addresses wait (1 s after the 21st failure); then one more try is heard.
    clock.move(seconds=1)
    assert attempt(client, real[0], TEST_PASSWORD, address=addresses[0]).status_code == 303


def test_one_account_by_many_passwords_is_locked_at_its_threshold_and_its_owner_gets_back(
    client: FlaskClient,
    clock: Clock,  # noqa: F811
    make_user: Callable[..., User],  # noqa: F811
) -> None:
    owner = make_user(email="owner@example.com")
    owners_browser = client.application.test_client()
    assert attempt(owners_browser, owner.email, TEST_PASSWORD, "192.0.2.50").status_code == 303
    owners_browser.post("/logout")  # the known-device cookie stays

    guesses = [f"essai-{n}" for n in range(drill_size(8, 400))]
    # From rotating addresses, so that the account's count, not an address's, is what holds.
    statuses = [
        attempt(client, owner.email, guess, f"203.0.113.{n % 200}").status_code
        for n, guess in enumerate(guesses)
    ]
    heard = FREE_FAILURES[ACCOUNT] + 1
    assert statuses == [400] * heard + [429] * (len(guesses) - heard)
    # The right password during the wait is refused unheard.
    assert attempt(client, owner.email, TEST_PASSWORD, "203.0.113.250").status_code == 429

    # A sprayer that keeps going after each wait doubles it, up to MAX_WAIT, never more.
    waits = []
    for n in range(drill_size(3, 12)):
        refused = attempt(client, owner.email, "encore", f"203.0.113.{n}")
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        clock.move(seconds=waits[-1])
        assert attempt(client, owner.email, f"encore-{n}", f"203.0.113.{n}").status_code == 400
    assert waits == [min(2**n, int(MAX_WAIT.total_seconds())) for n in range(len(waits))]

    # Still locked for everyone else; the owner's known browser has its own count and gets
    # in at once, which clears the account's count: the owner gets in from anywhere then.
    assert attempt(client, owner.email, TEST_PASSWORD, "192.0.2.99").status_code == 429
    assert attempt(owners_browser, owner.email, TEST_PASSWORD, "192.0.2.50").status_code == 303
    assert attempt(client, owner.email, TEST_PASSWORD, "192.0.2.99").status_code == 303
