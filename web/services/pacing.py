"""Pace every call to a shop's API, shared by all of Comptoir's processes through the database.

One ShopPacing row per shop holds what the shop told us last. Before a call, a short
transaction locks the row (SELECT … FOR UPDATE on PostgreSQL, the write lock on SQLite),
lets the estimated bucket leak to now, reserves one request and says how long to wait for
it; the wait happens after the commit, so no lock is held while sleeping. After the call,
the answer updates the row:
- Shopify's leaky bucket (https://shopify.dev/docs/api/usage/rate-limits): every answer
  carries `X-Shopify-Shop-Api-Call-Limit: used/capacity`; the bucket leaks 2 requests per
  second on standard plans, 20 on Shopify Plus (the shop's `api_calls_per_second`).
- Every platform: a 429's Retry-After (or a 503 that carries one) blocks the shop for that
  long, for every process.
A wait longer than MAX_WAIT is not slept: RateLimited(retry_after=…) goes to the caller,
whose retry schedule (inbox, outbox) honours it.

On SQLite a unit of work holds the database's write lock from its first statement to its
commit, shop calls included; a pacer transaction on another connection would wait for its
own thread. When the session the shop was loaded in holds that lock, the pacer works in a
savepoint of it: the lock already keeps the other processes out until the commit (a
caller that rolls back loses that call's reservation and observation with its own work).
Such a pacer sleeps at most LOCKED_MAX_WAIT, since every other writer (webhook intake
included) waits meanwhile: the worker first waits for room with wait_for_room(), holding
no lock, and a longer turn is a RateLimited retried later.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, object_session, sessionmaker

from web.connectors.base import BucketReading, RateLimited
from web.db import READ_ONLY, make_session_factory, read_only
from web.models import Shop, ShopPacing, utcnow
from web.models.enums import Platform

log = logging.getLogger(__name__)

# Shopify's REST bucket on standard plans; the header gives the real capacity.
SHOPIFY_CAPACITY = 40
SHOPIFY_CALLS_PER_SECOND = 2.0
# Longest wait slept inside a call; beyond it the caller is told to retry later.
MAX_WAIT = 5.0
# Longest wait slept while holding SQLite's write lock (one turn at 2 requests/s).
LOCKED_MAX_WAIT = 0.5
# How long a 429 without Retry-After blocks a shop that announces no bucket.
DEFAULT_BLOCK = 2.0

_factories: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = weakref.WeakKeyDictionary()


# --- The arithmetic ---------------------------------------------------------------------


def leaked(level: float, rate: float, seconds: float) -> float:
    """The bucket's level `seconds` later, leaking `rate` requests per second."""
    return max(0.0, level - rate * max(0.0, seconds))


def ceiling(capacity: int) -> float:
    """The level we fill up to: the shop counts whole requests on its own clock, so a
    request or two stays free (38 of 40)."""
    return float(capacity - max(1, capacity // 20))


def slot_wait(level: float, capacity: int, rate: float) -> float:
    """Seconds until one more request fits under the ceiling (level as of now)."""
    if capacity <= 0 or rate <= 0:
        return 0.0
    return max(0.0, (level + 1 - ceiling(capacity)) / rate)


# --- The pacer ----------------------------------------------------------------------------


class DbPacer:
    """The Pacer of one shop, its state in the shop's ShopPacing row.

    `sessions` opens the pacer's own short transactions; `caller` is the session the
    shop was loaded in (see the module docstring for SQLite). `bucket`: the platform
    announces a leaky bucket (Shopify) of `capacity` leaking `rate` per second.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        shop_id: int,
        *,
        bucket: bool = False,
        capacity: int = 0,
        rate: float = 0.0,
        caller: Session | None = None,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions = sessions
        self.shop_id = shop_id
        self.bucket = bucket
        self.capacity = capacity
        self.rate = rate
        self.caller = caller
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        # (level, capacity, when) as our last reservation left the row.
        self._known: tuple[float, int, dt.datetime] | None = None

    def before_call(self) -> None:
        """Wait for the shop's turn (reserving it), or raise RateLimited if it is too far."""
        try:
            wait = self._reserve()
        except SQLAlchemyError:
            # Pacing is a courtesy to the shop: its own 429s still guard the call.
            log.exception("could not reserve a call to shop %s; calling unpaced", self.shop_id)
            return
        if wait > 0:
            self.sleep(wait)

    def after_call(
        self, status: int, retry_after: float | None, bucket: BucketReading | None
    ) -> None:
        """Record the shop's bucket level and any Retry-After, for every process."""
        refused = status == 429
        if not refused and retry_after is None and not self._news(bucket):
            return  # nothing we did not know: no transaction
        try:
            with self._transaction() as session:
                row = self._row(session)
                now = self.clock()
                self._leak(row, now)
                if bucket is not None:
                    row.capacity = bucket.capacity
                    row.level = max(row.level, float(bucket.used))
                if refused:
                    row.refusals += 1
                    row.last_refusal_at = now
                    if self.bucket:
                        row.level = max(row.level, float(row.capacity))
                    elif retry_after is None:
                        retry_after = DEFAULT_BLOCK
                if retry_after is not None:
                    until = now + dt.timedelta(seconds=retry_after)
                    if row.blocked_until is None or row.blocked_until < until:
                        row.blocked_until = until
        except SQLAlchemyError:
            # The call itself went through; losing one observation must not fail it.
            log.exception("could not record the pacing of shop %s", self.shop_id)

    def _reserve(self) -> float:
        if not self.bucket:
            wait = self._blocked_for()
            if wait > self.max_wait:
                raise RateLimited(f"the shop asked to wait {wait:.1f} s", retry_after=wait)
            return wait
        locked = self._locking_caller() is not None
        with self._transaction() as session:
            row = self._row(session)
            now = self.clock()
            self._leak(row, now)
            wait = 0.0
            if row.blocked_until is not None and row.blocked_until > now:
                wait = (row.blocked_until - now).total_seconds()
            wait = max(wait, slot_wait(row.level, row.capacity, row.leak_rate))
            if wait > (min(self.max_wait, LOCKED_MAX_WAIT) if locked else self.max_wait):
                raise RateLimited(
                    f"the shop's API allowance is used up for {wait:.1f} s", retry_after=wait
                )
            row.level += 1
            self._known = (row.level, row.capacity, now)
            return wait

    def _news(self, bucket: BucketReading | None) -> bool:
        """Whether the shop's reading could raise the shared estimate.

        The row's level is at least what our last reservation left (other processes only
        add to it), so a reading at or under that, leaked to now, changes nothing.
        """
        if bucket is None:
            return False
        if self._known is None:
            return True
        level, capacity, at = self._known
        elapsed = (self.clock() - at).total_seconds()
        return bucket.capacity != capacity or bucket.used > leaked(level, self.rate, elapsed)

    def _blocked_for(self) -> float:
        """Seconds left of the shop's last Retry-After: one read, no lock, no row written."""
        query = select(ShopPacing.blocked_until).where(ShopPacing.shop_id == self.shop_id)
        caller = self.caller
        if caller is not None and caller.in_transaction():
            until = caller.connection().scalar(query)
        else:
            with self.sessions() as session:
                until = read_only(session).scalar(query)
        if until is None:
            return 0.0
        return max(0.0, (until - self.clock()).total_seconds())

    def _leak(self, row: ShopPacing, now: dt.datetime) -> None:
        elapsed = (now - row.observed_at).total_seconds()
        row.level = leaked(row.level, row.leak_rate, elapsed)
        row.observed_at = now
        row.leak_rate = self.rate

    def _row(self, session: Session) -> ShopPacing:
        query = (
            select(ShopPacing)
            .where(ShopPacing.shop_id == self.shop_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = session.scalar(query)
        if row is not None:
            return row
        row = ShopPacing(
            shop_id=self.shop_id,
            level=0.0,
            capacity=self.capacity,
            leak_rate=self.rate,
            observed_at=self.clock(),
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # Another process created it between our look-up and insert.
            row = session.scalars(query).one()
        return row

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        caller = self._locking_caller()
        if caller is not None:
            with caller.begin_nested():
                yield caller
            return
        with self.sessions.begin() as session:
            yield session

    def _locking_caller(self) -> Session | None:
        """The caller's session when it holds SQLite's write lock, else None."""
        caller = self.caller
        if caller is None or not caller.in_transaction():
            return None
        connection = caller.connection()
        if connection.dialect.name != "sqlite":
            return None
        if connection.get_execution_options().get(READ_ONLY):
            return None
        return caller


def wait_for_room(
    sessions: sessionmaker[Session],
    shop_id: int,
    *,
    max_wait: float = MAX_WAIT,
    clock: Callable[[], dt.datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Sleep, holding no lock, until the shop could take one more call; return the wait.

    Reserves nothing: a worker on SQLite calls it before a unit of work that may call the
    shop, so the pacer inside it (under the write lock) finds a turn at once.
    """
    with sessions() as session:
        row = read_only(session).scalar(select(ShopPacing).where(ShopPacing.shop_id == shop_id))
    if row is None:
        return 0.0
    now = clock()
    level = leaked(row.level, row.leak_rate, (now - row.observed_at).total_seconds())
    wait = slot_wait(level, row.capacity, row.leak_rate)
    if row.blocked_until is not None and row.blocked_until > now:
        wait = max(wait, (row.blocked_until - now).total_seconds())
    wait = min(wait, max_wait)
    if wait > 0:
        sleep(wait)
    return wait


def _sessions_for(bind: Engine | Connection) -> sessionmaker[Session]:
    if isinstance(bind, Connection):
        # A connection handed to the sessions (the tests' rolled-back one): stay on it.
        return sessionmaker(bind=bind, join_transaction_mode="create_savepoint")
    factory = _factories.get(bind)
    if factory is None:
        factory = _factories[bind] = make_session_factory(bind)
    return factory


def pacer_for(shop: Shop) -> DbPacer | None:
    """The pacer of a shop loaded in a session (None for a shop outside any session).

    Builds no query: the webhook path, which makes no call, pays nothing for it.
    """
    session = object_session(shop)
    if session is None or shop.id is None:
        return None
    bind = session.get_bind()
    assert isinstance(bind, Engine | Connection)
    if shop.platform == Platform.SHOPIFY:
        configured = shop.api_calls_per_second
        return DbPacer(
            _sessions_for(bind),
            shop.id,
            bucket=True,
            capacity=SHOPIFY_CAPACITY,
            rate=float(configured) if configured else SHOPIFY_CALLS_PER_SECOND,
            caller=session,
        )
    return DbPacer(_sessions_for(bind), shop.id, caller=session)
