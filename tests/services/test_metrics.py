"""What /metrics says, line by line: the help Prometheus shows beside each gauge, zeros when
nothing waits, and the request latency histogram (tests/web/test_observability.py: the page)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.factories import NOW
from web.services import metrics


def test_an_idle_installation_reports_zeros_with_their_help(db_session: Session) -> None:
    text = metrics.exposition(db_session, NOW)
    lines = text.splitlines()
    assert text.endswith("\n")
    for expected in [
        "# HELP comptoir_inbox_lag_seconds Age of the oldest delivery not applied yet "
        "(0 when none waits).",
        "comptoir_inbox_lag_seconds 0.0",
        "# HELP comptoir_outbox_due_messages Changes for the shops whose sending time has come.",
        "comptoir_outbox_due_messages 0.0",
        "# HELP comptoir_outbox_dead_messages Changes for the shops given up after every retry "
        "(sync issues).",
        "comptoir_outbox_dead_messages 0.0",
        "# HELP comptoir_sync_issues Problems waiting for a person, as the sync issues page "
        "counts them.",
        'comptoir_sync_issues{kind="dead_letters"} 0.0',
    ]:
        assert expected in lines


def test_request_latency_is_a_cumulative_histogram_per_kind() -> None:
    latency = metrics.LatencyHistogram()
    for seconds in (0.2, 0.2, 20.0):
        latency.observe("page", seconds)
    latency.observe("webhook", 0.005)
    name = "comptoir_request_duration_seconds"
    lines = latency.lines()
    assert lines[1] == f"# TYPE {name} histogram"
    page = [line for line in lines if 'kind="page"' in line]
    assert page[:6] == [
        f'{name}_bucket{{kind="page",le="0.005"}} 0',
        f'{name}_bucket{{kind="page",le="0.01"}} 0',
        f'{name}_bucket{{kind="page",le="0.025"}} 0',
        f'{name}_bucket{{kind="page",le="0.05"}} 0',
        f'{name}_bucket{{kind="page",le="0.1"}} 0',
        f'{name}_bucket{{kind="page",le="0.25"}} 2',
    ]
    assert page[-4:] == [
        f'{name}_bucket{{kind="page",le="10.0"}} 2',
        f'{name}_bucket{{kind="page",le="+Inf"}} 3',
        f'{name}_sum{{kind="page"}} 20.4',
        f'{name}_count{{kind="page"}} 3',
    ]
    assert f'{name}_bucket{{kind="webhook",le="0.005"}} 1' in lines
    assert f'{name}_sum{{kind="webhook"}} 0.005' in lines
