"""The sync issues rules: which messages and deliveries are listed, in what order, how they
are filtered, paged and counted, and what retrying or ignoring one does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests.factories import NOW, make_event, make_message, make_order, make_shop
from web.models import DeadLetter, OrderEvent, Shop, utcnow
from web.models.enums import ActorType, InboxState, OutboxState, Role
from web.services import outbox, sync_issues
from web.services.errors import NotFound
from web.services.sync_issues import INBOX, OUTBOX, IssueFilters
from web.services.timeline import Actor
from web.services.users import create_user


@pytest.fixture()
def shops(db_session: Session) -> tuple[Shop, Shop]:
    return (
        make_shop(db_session, "lyon", name="Boutique Lyon"),
        make_shop(db_session, "paris", name="Atelier Paris", platform="woocommerce"),
    )


def keys(page: sync_issues.IssuePage) -> list[tuple[str, int]]:
    return [(issue.kind, issue.id) for issue in page.items]


# --- Filters ---------------------------------------------------------------------------------


def test_filters_are_read_from_the_query_and_bad_values_refused() -> None:
    filters, refused = sync_issues.parse_filters({"shop": " lyon ", "kind": "outbox", "page": "2"})
    assert filters == IssueFilters(shop="lyon", kind=OUTBOX, page=2) and not refused
    assert filters.args() == {"shop": "lyon", "kind": "outbox"}
    filters, refused = sync_issues.parse_filters({"kind": "sideways", "page": "-1"})
    assert filters == IssueFilters() and set(refused) == {"kind", "page"}
    filters, refused = sync_issues.parse_filters({"page": "²"})
    assert filters == IssueFilters() and set(refused) == {"page"}
    # A shop key is 32 characters at most: a longer one is cut, not refused.
    filters, refused = sync_issues.parse_filters({"shop": "k" * 40})
    assert filters.shop == "k" * 32 and not refused


# --- Listing ---------------------------------------------------------------------------------


def test_only_problems_are_listed_newest_first_across_shops_and_directions(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    lyon, paris = shops
    lyon_order, paris_order = make_order(db_session, lyon), make_order(db_session, paris)
    dead = make_message(db_session, lyon_order, minutes_ago=30)
    failing = make_message(db_session, paris_order, state=OutboxState.FAILED, minutes_ago=5)
    for state in (OutboxState.PENDING, OutboxState.SENT, OutboxState.IGNORED):
        make_message(db_session, lyon_order, state=state, minutes_ago=1)
    parked = make_event(db_session, lyon, state=InboxState.PARKED, minutes_ago=20)
    failed = make_event(db_session, paris, state=InboxState.FAILED, minutes_ago=10)
    rejected = make_event(db_session, paris, state=InboxState.REJECTED, minutes_ago=40)
    for state in (InboxState.PENDING, InboxState.PROCESSED, InboxState.IGNORED):
        make_event(db_session, lyon, state=state, minutes_ago=2)

    page = sync_issues.list_issues(db_session, IssueFilters())

    assert keys(page) == [
        (OUTBOX, failing.id),
        (INBOX, failed.id),
        (INBOX, parked.id),
        (OUTBOX, dead.id),
        (INBOX, rejected.id),
    ]
    assert page.total == 5 and page.counts == sync_issues.IssueCounts(outbox=2, inbox=3)
    assert page.latest_at == NOW - dt.timedelta(minutes=5)
    first = page.items[0]
    assert first.shop == paris and first.order == paris_order and first.message == failing


def test_filters_by_shop_and_direction(db_session: Session, shops: tuple[Shop, Shop]) -> None:
    lyon, paris = shops
    lyon_dead = make_message(db_session, make_order(db_session, lyon))
    paris_dead = make_message(db_session, make_order(db_session, paris), minutes_ago=1)
    lyon_parked = make_event(db_session, lyon, state=InboxState.PARKED, minutes_ago=2)

    only_lyon = sync_issues.list_issues(db_session, IssueFilters(shop="lyon"))
    assert keys(only_lyon) == [(OUTBOX, lyon_dead.id), (INBOX, lyon_parked.id)]
    sent = sync_issues.list_issues(db_session, IssueFilters(kind=OUTBOX))
    assert keys(sent) == [(OUTBOX, lyon_dead.id), (OUTBOX, paris_dead.id)]
    assert sent.total == 2 and sent.pages == 1  # the parked delivery is not counted
    received = sync_issues.list_issues(db_session, IssueFilters(shop="paris", kind=INBOX))
    assert received.items == [] and received.total == 0 and received.latest_at is None
    unknown = sync_issues.list_issues(db_session, IssueFilters(shop="nowhere"))
    assert unknown.items == [] and unknown.total == 0


def test_pages_hold_per_page_issues_and_a_page_past_the_end_shows_the_last(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    order = make_order(db_session, shops[0])
    for minutes in range(4):
        make_message(db_session, order, minutes_ago=minutes * 2)
        make_event(db_session, shops[0], state=InboxState.PARKED, minutes_ago=minutes * 2 + 1)
    first = sync_issues.list_issues(db_session, IssueFilters(), per_page=3)
    assert (first.total, first.pages, len(first.items)) == (8, 3, 3)
    assert first.has_next and not first.has_prev
    seen = keys(first)
    for number in (2, 3):
        seen += keys(sync_issues.list_issues(db_session, IssueFilters(page=number), per_page=3))
    assert len(seen) == len(set(seen)) == 8
    assert [kind for kind, _ in seen] == [OUTBOX, INBOX] * 4
    last = sync_issues.list_issues(db_session, IssueFilters(page=99), per_page=3)
    assert last.page == 3 and len(last.items) == 2


def test_an_inbox_issue_finds_its_order_by_the_shops_id(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    lyon, paris = shops
    order = make_order(db_session, lyon)
    make_order(db_session, paris)  # same external id at another shop
    known = make_event(
        db_session, lyon, state=InboxState.PARKED, external_order_id=order.external_id
    )
    stranger = make_event(db_session, lyon, state=InboxState.FAILED, external_order_id="999")
    issues = {
        issue.id: issue for issue in sync_issues.list_issues(db_session, IssueFilters()).items
    }
    assert issues[known.id].order == order
    assert issues[stranger.id].order is None
    assert sync_issues.inbox_issue(db_session, known.id).order == order


def test_an_inbox_issue_of_an_order_it_already_applied_to_finds_that_order(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    order = make_order(db_session, shops[0])
    failed = make_event(db_session, shops[0], state=InboxState.FAILED, minutes_ago=1)
    failed.order_id = order.id  # an update of an order Comptoir holds, failing this time
    db_session.flush()
    (issue,) = sync_issues.list_issues(db_session, IssueFilters()).items
    assert issue.id == failed.id and issue.order == order


def test_a_dead_letter_is_found_open_or_not_and_described(db_session: Session) -> None:
    letter = DeadLetter(queue="jobs", message_id="m-1", body='{"queue":"jobs","id":7}')
    db_session.add(letter)
    db_session.flush()
    found = sync_issues.dead_letter_issue(db_session, letter.id)
    assert found.letter == letter
    assert (found.subject.kind, found.subject.id, found.subject.item) == ("job", 7, None)
    with pytest.raises(NotFound):
        sync_issues.dead_letter_issue(db_session, letter.id + 1000)


def test_one_issue_is_found_whatever_its_state_or_refused(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    order = make_order(db_session, shops[0])
    sent = make_message(db_session, order, state=OutboxState.SENT)
    issue = sync_issues.outbox_issue(db_session, sent.id)
    assert issue.order == order and issue.state == OutboxState.SENT and not issue.busy
    with pytest.raises(NotFound):
        sync_issues.outbox_issue(db_session, sent.id + 1000)
    with pytest.raises(NotFound):
        sync_issues.inbox_issue(db_session, 999_999)


# --- Counting --------------------------------------------------------------------------------


@pytest.fixture()
def statements(db_session: Session) -> Iterator[list[str]]:
    """The SQL statements the session's connection runs, while the test runs."""
    seen: list[str] = []
    engine = db_session.get_bind().engine

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_counts_are_three_counts_in_one_query(
    db_session: Session, shops: tuple[Shop, Shop], statements: list[str]
) -> None:
    lyon, paris = shops
    db_session.add_all(
        [
            DeadLetter(queue="jobs", message_id="m-open", body="{}"),
            DeadLetter(queue="jobs", message_id="m-done", body="{}", dismissed_at=utcnow()),
        ]
    )
    make_message(db_session, make_order(db_session, lyon), state=OutboxState.FAILED)
    make_message(db_session, make_order(db_session, paris))
    make_message(db_session, make_order(db_session, paris), state=OutboxState.SENT)
    make_event(db_session, lyon, state=InboxState.REJECTED)
    make_event(db_session, lyon, state=InboxState.PROCESSED)
    statements.clear()

    counts = sync_issues.counts(db_session)

    assert (counts.outbox, counts.inbox, counts.dead_letters, counts.total) == (2, 1, 1, 4)
    # Every page's navigation shows them: one round trip, counting (no rows loaded).
    assert len(statements) == 1 and statements[0].lower().count("count(") == 3
    assert sync_issues.counts(db_session, "paris") == sync_issues.IssueCounts(outbox=1, inbox=0)


# --- Acting ----------------------------------------------------------------------------------


def test_retry_puts_a_dead_message_back_in_line_with_the_person_on_the_timeline(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    order = make_order(db_session, shops[0])
    dead = make_message(db_session, order)
    user, _ = create_user(db_session, "nadia@example.com", Role.MANAGER, "long enough pw", "Nadia")
    actor = Actor.for_user(user)

    outbox.retry(db_session, dead, actor)
    db_session.flush()

    assert dead.state == OutboxState.PENDING and dead.attempts == 0
    assert dead.id in outbox.due_message_ids(db_session, now=dead.next_attempt_at)
    note = db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "outbox.retried")).one()
    assert note.order_id == order.id and note.actor_type == ActorType.USER
    assert note.actor_user_id == user.id
    assert sync_issues.counts(db_session).outbox == 0


def test_ignore_takes_a_failing_message_off_the_list(
    db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    failing = make_message(db_session, make_order(db_session, shops[0]), state=OutboxState.FAILED)
    outbox.ignore(db_session, failing, Actor.system())
    db_session.flush()
    assert failing.state == OutboxState.IGNORED
    assert sync_issues.list_issues(db_session, IssueFilters()).items == []
