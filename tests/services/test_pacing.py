"""Pacing: the bucket arithmetic, and one shop's allowance shared by the pacers of separate
processes (two engines on the same database, so two pools of connections)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from web.connectors.base import BucketReading, PlatformUnavailable, RateLimited
from web.db import make_engine, make_session_factory
from web.models import InboxEvent, ShopPacing, utcnow
from web.models.enums import InboxState
from web.services import intake, pacing, shops, sync
from web.services.pacing import DbPacer, ceiling, leaked, slot_wait

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "order-fr-relay-point.json"
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_keys = itertools.count(1)


class Clock:
    """A clock the test moves by hand, shared by the pacers of both "processes"."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = separate_database_url(tmp_path_factory.mktemp("pacing"), "pacing")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


@pytest.fixture()
def processes(database: str) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    """The session factories of two processes: each its own engine and connections."""
    engines = [make_engine(database), make_engine(database)]
    yield make_session_factory(engines[0]), make_session_factory(engines[1])
    for engine in engines:
        engine.dispose()


def _shop(sessions: sessionmaker[Session], platform: str = "shopify", url: str = "") -> int:
    with sessions.begin() as session:
        shop = shops.create_shop(
            session, platform, "Boutique", url or "https://shop.test", key=f"pace-{next(_keys)}"
        )
        session.flush()
        return shop.id


def _pacer(sessions: sessionmaker[Session], shop_id: int, clock: Clock, **kw: object) -> DbPacer:
    sleeps: list[float] = []
    bucket = {"bucket": True, "capacity": 40, "rate": 2.0} if kw.get("bucket", True) else {}
    options: dict[str, object] = {**bucket, **kw}
    pacer = DbPacer(sessions, shop_id, clock=clock, sleep=sleeps.append, **options)  # type: ignore[arg-type]
    pacer.sleeps = sleeps  # type: ignore[attr-defined]
    return pacer


def _row(sessions: sessionmaker[Session], shop_id: int) -> ShopPacing | None:
    with sessions() as session:
        return session.scalar(select(ShopPacing).where(ShopPacing.shop_id == shop_id))


def test_the_bucket_leaks_at_its_rate_and_never_below_empty() -> None:
    assert leaked(10.0, 2.0, 3.0) == 4.0
    assert leaked(3.0, 2.0, 5.0) == 0.0
    assert leaked(5.0, 2.0, -1.0) == 5.0  # a clock that went back leaks nothing
    assert ceiling(40) == 38 and ceiling(400) == 380 and ceiling(10) == 9


def test_a_request_waits_until_it_fits_under_the_ceiling() -> None:
    assert slot_wait(36.0, 40, 2.0) == 0.0
    assert slot_wait(37.0, 40, 2.0) == 0.0  # the 38th request goes at once
    assert slot_wait(38.0, 40, 2.0) == 0.5
    assert slot_wait(45.0, 40, 2.0) == 4.0  # eight reserved ahead of us
    assert slot_wait(45.0, 400, 20.0) == 0.0  # a Plus shop
    assert slot_wait(99.0, 0, 2.0) == 0.0  # no bucket announced


def test_two_processes_fill_one_bucket_together_then_take_turns(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = processes
    shop_id = _shop(first)
    clock = Clock()
    a, b = _pacer(first, shop_id, clock), _pacer(second, shop_id, clock)
    for _ in range(19):
        a.before_call()
        b.before_call()
    assert a.sleeps == [] and b.sleeps == []  # type: ignore[attr-defined]
    a.before_call()
    b.before_call()
    a.before_call()
    # 38 requests in the bucket: each next one waits half a second more at 2/s.
    assert a.sleeps == [0.5, 1.5] and b.sleeps == [1.0]  # type: ignore[attr-defined]

    clock.advance(20.5)  # 41 requests leaked at 2/s: empty again
    b.before_call()
    assert b.sleeps == [1.0]  # type: ignore[attr-defined]
    row = _row(second, shop_id)
    assert row is not None and row.level == 1.0 and row.refusals == 0


def test_the_shops_call_limit_header_corrects_every_processs_estimate(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = processes
    shop_id = _shop(first)
    clock = Clock()
    a, b = _pacer(first, shop_id, clock), _pacer(second, shop_id, clock)
    a.before_call()
    # Something else spent the allowance: the shop says 39 of 40 after our call.
    a.after_call(200, None, BucketReading(used=39, capacity=40))
    b.before_call()
    assert b.sleeps == [1.0]  # type: ignore[attr-defined]
    # A Plus shop says its capacity; the rate is the shop's setting.
    plus = _pacer(second, shop_id, clock, rate=20.0)
    clock.advance(20)  # 40 leaked at 2/s
    plus.after_call(200, None, BucketReading(used=10, capacity=400))
    for _ in range(370):
        plus.before_call()
    assert plus.sleeps == []  # type: ignore[attr-defined]
    plus.before_call()
    assert plus.sleeps == [pytest.approx(0.05)]  # type: ignore[attr-defined]


def test_a_429_blocks_the_shop_for_every_process_until_its_retry_after(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = processes
    shop_id = _shop(first)
    clock = Clock()
    a, b = _pacer(first, shop_id, clock), _pacer(second, shop_id, clock)
    a.before_call()
    a.after_call(429, 3.0, BucketReading(used=40, capacity=40))
    b.before_call()
    assert b.sleeps == [3.0]  # type: ignore[attr-defined]

    a.after_call(429, 30.0, None)
    level = _row(first, shop_id).level  # type: ignore[union-attr]
    with pytest.raises(RateLimited) as refused:
        b.before_call()
    assert refused.value.retry_after == pytest.approx(30.0)
    assert _row(first, shop_id).level == level  # type: ignore[union-attr]  # nothing reserved
    assert _row(second, shop_id).refusals == 2  # type: ignore[union-attr]
    clock.advance(30)
    b.before_call()
    assert b.sleeps == [3.0, 0.0] or b.sleeps == [3.0]  # type: ignore[attr-defined]


def test_other_platforms_share_retry_after_and_write_nothing_otherwise(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = processes
    shop_id = _shop(first, "woocommerce")
    clock = Clock()
    a, b = _pacer(first, shop_id, clock, bucket=False), _pacer(second, shop_id, clock, bucket=False)
    a.before_call()
    a.after_call(200, None, None)
    assert _row(first, shop_id) is None  # no bucket, nothing said: no write at all
    a.after_call(503, 7.0, None)  # a 503 that says when to come back
    with pytest.raises(RateLimited) as refused:
        b.before_call()
    assert refused.value.retry_after == pytest.approx(7.0)
    clock.advance(4)
    b.before_call()
    assert b.sleeps == [pytest.approx(3.0)]  # type: ignore[attr-defined]
    clock.advance(3)
    a.after_call(429, None, None)  # no Retry-After: a short default block
    b.before_call()
    assert b.sleeps[-1] == pytest.approx(pacing.DEFAULT_BLOCK)  # type: ignore[attr-defined]
    assert _row(second, shop_id).refusals == 1  # type: ignore[union-attr]


def test_concurrent_reservations_from_four_processes_never_take_the_same_turn(
    database: str,
) -> None:
    engines = [make_engine(database) for _ in range(4)]
    factories = [make_session_factory(engine) for engine in engines]
    shop_id = _shop(factories[0])
    clock = Clock()
    full = _pacer(factories[0], shop_id, clock)
    for _ in range(38):
        full.before_call()
    pacers = [_pacer(factory, shop_id, clock, max_wait=100.0) for factory in factories]
    errors: list[BaseException] = []

    def work(pacer: DbPacer) -> None:
        try:
            for _ in range(5):
                pacer.before_call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(pacer,)) for pacer in pacers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert errors == []
    waits = sorted(w for pacer in pacers for w in pacer.sleeps)  # type: ignore[attr-defined]
    # Twenty requests beyond the ceiling, each its own half-second turn: none lost.
    assert waits == [0.5 * n for n in range(1, 21)]


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_shops_retry_after_stops_the_other_process_before_it_calls(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]], platform: str
) -> None:
    first, second = processes
    emulator = ShopifyEmulator() if platform == "shopify" else WooCommerceEmulator()
    with emulator:
        with first.begin() as session:
            shop = shops.create_shop(
                session,
                platform,
                "Boutique",
                emulator.base_url,
                key=f"pace-{next(_keys)}",
                api_key=getattr(emulator, "access_token", None)
                or getattr(emulator, "consumer_key", None),
                api_secret=getattr(emulator, "consumer_secret", None),
            )
            key = shop.key
        emulator.fail_next(429 if platform == "shopify" else 503, retry_after="30")
        with first.begin() as session:
            connector = shops.connector_for(shops.get_by_key(session, key))
            with pytest.raises(RateLimited if platform == "shopify" else PlatformUnavailable):
                connector.test_connection()
        with second.begin() as session:
            connector = shops.connector_for(shops.get_by_key(session, key))
            with pytest.raises(RateLimited) as refused:
                connector.test_connection()
        assert refused.value.retry_after is not None and refused.value.retry_after > 25
        assert len(emulator.requests) == 1  # the second process never reached the shop


def test_storing_a_webhook_asks_nothing_of_the_pacing_processing_it_does(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    sessions, _ = processes
    with ShopifyEmulator() as emulator:
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "shopify",
                "Boutique",
                emulator.base_url,
                key=f"pace-{next(_keys)}",
                api_key=emulator.access_token,
                webhook_secret=emulator.webhook_secret,
            )
            key = shop.key
        order = emulator.add_order(FIXTURE.read_text())
        body, headers = emulator.webhook("orders/create", order["id"])
        statements: list[str] = []
        engine = sessions.kw["bind"]

        def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            with sessions.begin() as session:
                shop = shops.get_by_key(session, key)
                received = intake.receive_webhook(session, shop, body, headers)
                assert received.event is not None
                event_id = received.event.id
            assert not [s for s in statements if "shop_pacing" in s]
            with sessions.begin() as session:
                intake.process_event(session, session.get_one(InboxEvent, event_id))
            # Applying the body calls nobody; its follow-up reads the transactions, paced.
            assert not [s for s in statements if "shop_pacing" in s]
            sync.process_pending(sessions)
            assert [s for s in statements if "shop_pacing" in s]
            assert emulator.requests_to("GET", "/transactions.json")
        finally:
            event.remove(engine, "before_cursor_execute", seen)


def test_the_inbox_worker_waits_out_the_shops_retry_after_before_it_works_an_event(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    """The shop's Retry-After is longer than a pacer may sleep under SQLite's write lock: the
    worker waits for it first, holding no lock, and the payments are read on time."""
    sessions, _ = processes
    with ShopifyEmulator() as emulator:
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "shopify",
                "Boutique",
                emulator.base_url,
                key=f"pace-{next(_keys)}",
                api_key=emulator.access_token,
                webhook_secret=emulator.webhook_secret,
            )
            order = emulator.add_order(FIXTURE.read_text())
            body, headers = emulator.webhook("orders/create", order["id"])
            received = intake.receive_webhook(session, shop, body, headers)
            assert received.event is not None
            intake.process_event(session, received.event)  # its payments: a follow-up
            shop_id = shop.id
        # Another process was just told to come back in 0.8 s (a 503 with Retry-After).
        DbPacer(sessions, shop_id, bucket=True, capacity=40, rate=2.0).after_call(503, 0.8, None)
        emulator.requests.clear()

        assert sync.process_pending(sessions, shop_id) == 1

        assert emulator.requests_to("GET", "/transactions.json")
        with sessions() as session:
            states = session.scalars(select(InboxEvent.state).where(InboxEvent.shop_id == shop_id))
            assert set(states) == {InboxState.PROCESSED}


def test_a_worker_waits_for_room_holding_no_lock_and_reserves_nothing(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = processes
    shop_id = _shop(first)
    clock = Clock()
    assert pacing.wait_for_room(second, shop_id, clock=clock) == 0.0  # no row yet
    a = _pacer(first, shop_id, clock)
    for _ in range(40):
        a.before_call()
    level = _row(first, shop_id).level  # type: ignore[union-attr]
    slept: list[float] = []
    wait = pacing.wait_for_room(second, shop_id, clock=clock, sleep=slept.append)
    assert wait == slept[0] == 1.5  # 40 in the bucket: room for one more in 1.5 s at 2/s
    assert _row(first, shop_id).level == level  # type: ignore[union-attr]


def test_a_pacer_under_sqlites_write_lock_never_sleeps_long(database: str) -> None:
    engine = make_engine(database)
    sessions = make_session_factory(engine)
    shop_id = _shop(sessions)
    clock = Clock()
    _pacer_full = _pacer(sessions, shop_id, clock)
    for _ in range(38):
        _pacer_full.before_call()
    with sessions.begin() as caller:
        caller.get_one(ShopPacing, _row(sessions, shop_id).id)  # type: ignore[union-attr]
        locked = _pacer(sessions, shop_id, clock, caller=caller)
        locked.before_call()  # one turn (0.5 s) may be slept under the lock
        if engine.dialect.name == "sqlite":
            with pytest.raises(RateLimited) as refused:
                locked.before_call()  # a second turn is a retry later
            assert refused.value.retry_after == 1.0
        else:
            locked.before_call()  # PostgreSQL's pacer has its own connection
    assert locked.sleeps[0] == 0.5  # type: ignore[attr-defined]
    engine.dispose()


def test_a_shopify_shops_pacer_leaks_at_the_shops_own_rate(db_session: Session) -> None:
    plus = shops.create_shop(db_session, "shopify", "Plus", "https://plus.test", key="pace-plus")
    plus.api_calls_per_second = Decimal("20")
    basic = shops.create_shop(
        db_session, "shopify", "Basic", "https://basic.test", key="pace-basic"
    )
    db_session.commit()

    for shop in (plus, basic):
        pacer = pacing.pacer_for(shop)
        assert pacer is not None
        pacer.before_call()

    rates = dict(db_session.execute(select(ShopPacing.shop_id, ShopPacing.leak_rate)).all())
    assert rates == {plus.id: 20.0, basic.id: pacing.SHOPIFY_CALLS_PER_SECOND}


def test_a_shops_retry_after_stops_the_next_call_from_a_session_between_transactions(
    db_session: Session,
) -> None:
    shop = shops.create_shop(db_session, "woocommerce", "Woo", "https://woo.test", key="pace-w")
    db_session.add(
        ShopPacing(
            shop_id=shop.id,
            level=0.0,
            capacity=0,
            leak_rate=0.0,
            observed_at=utcnow(),
            blocked_until=utcnow() + dt.timedelta(hours=1),
        )
    )
    db_session.commit()  # the session holds no transaction: the pacer reads on its own

    pacer = pacing.pacer_for(shop)
    assert pacer is not None
    with pytest.raises(RateLimited) as refused:
        pacer.before_call()
    assert refused.value.retry_after == pytest.approx(3600, abs=5)


def test_a_reading_that_tells_nothing_new_writes_nothing(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, _ = processes
    shop_id = _shop(first)
    clock = Clock()
    pacer = _pacer(first, shop_id, clock)
    pacer.before_call()  # one call reserved at T0: level 1, leaked to 0 a half second later
    clock.advance(1)

    pacer.after_call(200, None, BucketReading(used=0, capacity=40))

    row = _row(first, shop_id)
    assert row is not None and (row.observed_at, row.level) == (T0, 1.0)  # not written again
    pacer.after_call(200, None, BucketReading(used=1, capacity=40))
    row = _row(first, shop_id)
    assert row is not None and (row.observed_at, row.level) == (T0 + dt.timedelta(seconds=1), 1.0)


def test_a_pacing_the_database_cannot_record_lets_the_call_through_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every write fails
    pacer = _pacer(make_session_factory(engine), 7, Clock())
    with caplog.at_level("ERROR", logger="web.services.pacing"):
        pacer.after_call(429, 5.0, None)
    engine.dispose()
    assert "could not record the pacing of shop 7" in caplog.text
