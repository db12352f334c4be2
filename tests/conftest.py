"""Fixtures every test directory shares; what they are built on lives in tests/support/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from detectkd.resources import Resources
from tests.support.clickhouse_server import ClickHouseServer, remove, start_server
from tests.support.http import Receiver, receiving


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server recording the JSON bodies POSTed to it."""
    async with receiving() as rec:
        yield rec


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    """Shared HTTP session, pools and threads, closed after the test."""
    r = Resources()
    yield r
    await r.close()


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[ClickHouseServer]:
    """One private ClickHouse server per test session (per xdist worker)."""
    server = start_server()
    yield server
    remove(server)


# The longest tests (tens of seconds: real daemons on real timers, or heavy numerics), run
# first: on pytest-xdist workers a long test that starts last makes the whole suite wait for
# it. Only the order depends on this list; a renamed test just loses its head start.
SLOW_FIRST = (
    "e2e/test_demo.py::test_scripts_demo_fires_and_resolves",
    "e2e/test_tutorial.py::",
    "e2e/test_databases.py::",
    "unit/test_score_contract.py::test_calibrated_detectors_rarely_alarm_on_normal_data",
    "e2e/test_workers.py::",
    "e2e/test_web_attacks.py::test_a_workers_supervisor",
    "e2e/test_alerting.py::test_a_silence_from_the_cli",
    "e2e/test_history_loading.py::",
    "e2e/test_backtest_assert.py::",
    "e2e/test_daemon.py::test_kill_9",
    "e2e/test_ha.py::",
    "e2e/test_alertmanager.py::",
    "e2e/test_examples.py::test_postgres_and_mariadb",
    "e2e/test_detectk_run.py::",
    "e2e/test_cli.py::test_dtk_run",
    "e2e/test_restart.py::",
    "unit/test_auto_detector.py::test_a_batch_is_judged_exactly_as_point_by_point",
    "unit/test_auto_detector.py::test_surprise_is_relative",
    "e2e/test_ui.py::test_the_ui_through_a_workers_supervisor",
    "e2e/test_systemd.py::test_workers_are_ready_together",
    "e2e/test_outbox_crash.py::",
    "e2e/test_prometheus_daemon.py::",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """SLOW_FIRST's tests ahead of the others, in that order (the rest keep theirs)."""

    def rank(item: pytest.Item) -> int:
        node = item.nodeid.removeprefix("tests/")
        return next((i for i, prefix in enumerate(SLOW_FIRST) if node.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)
