"""Scale-out: two gateway processes share one PostgreSQL metadata database.

A deployment change made anywhere reaches both processes by their revision poll,
while requests keep flowing and none of them fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serving._deploy_support import Home, open_home, record
from tests.serving._gateway_process import Traffic, running_gateways, wait_until

from steward.serving import Variant

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# The gateways poll every second, so a change shows within about 1 s plus a model
# load. The deadline is generous for a busy machine: this checks that the change
# arrives, not how fast (that is for benchmarks).
SWITCH_DEADLINE_S = 5.0


@pytest.fixture
def home(database_url: str, tmp_path: Path) -> Iterator[Home]:
    h = open_home(tmp_path / "home", database_url)
    # A model call may wait long on a busy machine; a timeout there is not what is tested.
    h.deployments.create(
        "fraud-api", [Variant("champion", "fraud@champion")], settings={"timeout_ms": 30_000}
    )
    yield h
    h.store.close()


def _switch(traffic: Traffic, urls: list[str], revision: int) -> None:
    """Wait until every gateway serves ``revision``; check no later request got an older one."""
    wait_until(
        lambda: all(traffic.served(url, revision) for url in urls),
        SWITCH_DEADLINE_S,
        f"revision {revision} on every gateway",
    )
    wait_until(
        lambda: all(len(traffic.served(url, revision)) >= 10 for url in urls),
        60,
        f"10 answers of revision {revision} from every gateway",
    )
    for url in urls:
        first = min(a.received for a in traffic.served(url, revision))
        # A request sent once the gateway answered from the new revision runs on it:
        # the swap is atomic and a worker never goes back.
        answers = list(traffic.answers[url])
        stale = [a for a in answers if a.sent > first and a.revision != revision]
        assert stale == [], f"{url} answered from an older revision after switching: {stale[:3]}"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_gateways_on_postgres_switch_revisions_without_failing_a_request(
    home: Home, database_url: str
) -> None:
    with running_gateways(home.path, 2, STEWARD_DATABASE_URL=database_url) as gateways:
        urls = [gateway.predict_url("fraud-api") for gateway in gateways]
        with Traffic(urls, {"inputs": record()}, threads=3) as traffic:
            wait_until(
                lambda: all(len(traffic.served(url, 1)) >= 10 for url in urls),
                60,
                "both gateways serving revision 1",
            )
            home.deployments.update("fraud-api", [Variant("challenger", "fraud:2")])
            _switch(traffic, urls, 2)
            home.deployments.rollback("fraud-api", 1, reason="back to the champion")
            _switch(traffic, urls, 3)
        answers = traffic.all_answers()
        failed = [a for a in answers if a.status != 200]
        assert failed == [], f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
        versions = {(a.revision, a.model_version) for a in answers}
        assert versions == {(1, "fraud:1"), (2, "fraud:2"), (3, "fraud:1")}
