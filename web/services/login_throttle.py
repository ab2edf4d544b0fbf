"""Failed logins slow down the next ones, per account and per address, in the database.

Counted in `login_throttles`, so every process (gunicorn workers, threads) sees the same
counts. An account is the e-mail as typed, lower-cased, counted whether or not a user has
it, so the throttle says nothing about which accounts exist. An address is the client's IPv4
address, or its /64 for IPv6 (one host holds a whole /64).

The first failures are free (FREE_FAILURES); each one after doubles the wait before the next
attempt is even checked (1 s, 2 s, 4 s … capped at MAX_WAIT), and the wait is answered
without looking at the password, so a right guess during it tells nothing. A success clears
the account's count. After QUIET_RESET without a failure, counting starts over.

So that spraying one account never locks its owner out for long, the cap is short, and a
browser where the account logged in before (a known device, signed cookie set by the view)
is checked against its own count only: it skips the account's and the address's waits.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, case, delete, null, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from web.models import LoginThrottle
from web.services import users
from web.services.audit import record_audit

ACCOUNT = "account"
ADDRESS = "address"
DEVICE = "device"

# A person mistypes a few times; an office behind one address holds several people.
FREE_FAILURES = {ACCOUNT: 5, ADDRESS: 20, DEVICE: 5}
FIRST_WAIT = dt.timedelta(seconds=1)
MAX_WAIT = dt.timedelta(minutes=15)
QUIET_RESET = dt.timedelta(hours=24)

KEY_LENGTH = 254  # LoginThrottle.key


@dataclass(frozen=True)
class Attempt:
    """Who is trying: the e-mail typed, the client address, the known device if any."""

    email: str
    address: str
    device: str = ""  # a known device's id, when its cookie names this account

    def keys(self) -> list[tuple[str, str]]:
        """The counts this attempt is checked against, in a fixed order (lock order)."""
        if self.device:
            return [(DEVICE, device_key(self.device, self.email))]
        return [(ACCOUNT, account_key(self.email)), (ADDRESS, address_key(self.address))]

    def counted(self) -> list[tuple[str, str]]:
        """The counts a failure of this attempt adds to."""
        counted = [(ACCOUNT, account_key(self.email)), (ADDRESS, address_key(self.address))]
        if self.device:
            counted.append((DEVICE, device_key(self.device, self.email)))
        return counted


@dataclass(frozen=True)
class Throttled:
    """An attempt refused unheard: which count, and until when."""

    scope: str
    until: dt.datetime
    now: dt.datetime

    @property
    def wait_seconds(self) -> int:
        return max(1, math.ceil((self.until - self.now).total_seconds()))


def account_key(email: str) -> str:
    """The account as counted: the e-mail as typed, trimmed and lower-cased, a NUL character
    (which PostgreSQL refuses in text) as U+FFFD."""
    return email.strip().lower().replace("\x00", "\ufffd")[:KEY_LENGTH]


def address_key(address: str) -> str:
    """The address as counted: IPv4 as is (also when IPv6-mapped), IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip().replace("\x00", "\ufffd")[:KEY_LENGTH] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def device_key(device: str, email: str) -> str:
    """One known device's count for one account."""
    return hashlib.sha256(f"{device}\n{account_key(email)}".encode()).hexdigest()


def wait_after(failures: int, scope: str) -> dt.timedelta | None:
    """How long the next attempt waits after this many failures; None while they are free."""
    over = failures - FREE_FAILURES[scope]
    if over <= 0:
        return None
    # 2**over grows past any cap quickly: stop doubling once the cap is reached.
    return min(MAX_WAIT, FIRST_WAIT * 2 ** min(over - 1, 20))


def check(session: Session, attempt: Attempt, now: dt.datetime) -> Throttled | None:
    """Whether the attempt must wait; its rows stay locked until the caller commits.

    Locking (PostgreSQL) makes the next attempt on the same account wait for this one's
    outcome, so parallel guesses cannot all slip in before the first failure is counted.
    """
    rows = session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.scope.in_([scope for scope, _key in attempt.keys()]))
        .where(LoginThrottle.key.in_([key for _scope, key in attempt.keys()]))
        .order_by(LoginThrottle.scope, LoginThrottle.key)
        .with_for_update()
    ).all()
    wanted = set(attempt.keys())
    waits = [
        Throttled(row.scope, row.blocked_until, now)
        for row in rows
        if (row.scope, row.key) in wanted
        and row.blocked_until is not None
        and row.blocked_until > now
    ]
    return max(waits, key=lambda wait: wait.until) if waits else None


def record_failure(session: Session, attempt: Attempt, now: dt.datetime) -> list[Throttled]:
    """Count a failed attempt; each count that now makes the next attempt wait is returned
    and written to the audit log (once per escalation)."""
    escalations = []
    for scope, key in attempt.counted():
        failures = _count(session, scope, key, now)
        wait = wait_after(failures, scope)
        if wait is None:
            continue
        until = now + wait
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
            .values(blocked_until=until)
        )
        escalation = Throttled(scope, until, now)
        escalations.append(escalation)
        _audit(session, attempt, scope, failures, escalation)
    _forget_quiet(session, now)
    return escalations


def record_success(session: Session, attempt: Attempt) -> None:
    """Clear the account's count (and the device's); the address keeps its own."""
    keys = [(ACCOUNT, account_key(attempt.email))]
    if attempt.device:
        keys.append((DEVICE, device_key(attempt.device, attempt.email)))
    for scope, key in keys:
        session.execute(
            delete(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        )


def _count(session: Session, scope: str, key: str, now: dt.datetime) -> int:
    """Add one failure in a single statement (safe under concurrent attempts); the count."""
    table = cast(Table, LoginThrottle.__table__)
    statement = _upsert(session.get_bind().dialect.name)
    cutoff = now - QUIET_RESET
    quiet = table.c.last_failure_at < cutoff
    failures = session.execute(
        statement.values(scope=scope, key=key, failures=1, last_failure_at=now)
        .on_conflict_do_update(
            index_elements=[table.c.scope, table.c.key],
            set_={
                "failures": case((quiet, 1), else_=table.c.failures + 1),
                "blocked_until": case((quiet, null()), else_=table.c.blocked_until),
                "last_failure_at": now,
            },
        )
        .returning(table.c.failures)
    ).scalar_one()
    return int(failures)


@functools.cache
def _upsert(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(cast(Table, LoginThrottle.__table__))


def _forget_quiet(session: Session, now: dt.datetime) -> None:
    """Drop counts quiet for a day and no longer waiting: sprayed e-mails do not pile up."""
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < now - QUIET_RESET,
            (LoginThrottle.blocked_until.is_(None)) | (LoginThrottle.blocked_until < now),
        )
    )


def _audit(
    session: Session, attempt: Attempt, scope: str, failures: int, escalation: Throttled
) -> None:
    subject = users.find_by_email(session, attempt.email) if scope != ADDRESS else None
    params: dict[str, Any] = {
        "email": account_key(attempt.email),
        "failures": failures,
        "wait_seconds": escalation.wait_seconds,
        "scope": scope,
    }
    if scope == ADDRESS:
        params["address"] = address_key(attempt.address)
    record_audit(
        session, "login.throttled", subject=subject, address=attempt.address, params=params
    )
