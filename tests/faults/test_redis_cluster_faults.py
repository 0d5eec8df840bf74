"""A Redis Cluster of our own (3 masters + 3 replicas): a master killed, the cluster paused.

Issue 25: with ``socket_timeout=1.0`` a paused cluster took 4 s to fail a call (the
store's retry retried timeouts, and a ``retry=`` of the user's was overwritten). Here two
uvicorn workers serve sessions and JWT on the Cluster while eight virtual users work:

- the whole cluster paused (SIGSTOP): every call is a 503 within ``socket_timeout`` plus
  a margin, and 200 again once it resumes;
- a master killed: while its replica is promoted, session requests of users whose slot
  it served answer 503 and the others 200 (their keys live on the other masters, which
  keep serving: ``cluster-require-full-coverage no``); after the cluster reports ok,
  everything answers 200. JWT requests touch token keys in any slot, so they may answer
  503 for any user during the fail-over.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from faultkit import AppServer, app_server, check, run_fault
from redis.cluster import key_slot

from fastsecure_redis import user_tag
from fastsecure_redis.testing import Cluster, require_binaries, start_cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

BOUND = 1.0  # the store's socket_timeout
SESSION_KINDS = ("login_session", "session_me", "logout_session", "revoked_session")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_binaries()
    # Without full coverage required, the masters that did not fail keep serving while
    # the failed one's replica is promoted; Redis's default answers CLUSTERDOWN for every
    # slot in that window (about 0.5-1 s), and those requests are 503 too.
    started = start_cluster(
        tmp_path_factory.mktemp("cluster"), replicas=1, require_full_coverage=False
    )
    try:
        yield started
    finally:
        started.resume()
        started.stop()


@pytest.fixture(scope="module")
def app(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {
        "FAULT_STORE": "redis",
        "FAULT_CLUSTER": "1",
        "FAULT_URL": cluster.url,
        "FAULT_PREFIX": "fault:",
        "FAULT_TIMEOUT": str(BOUND),
        "FAULT_JWT_SECRET": secrets.token_urlsafe(48),
    }
    log = tmp_path_factory.mktemp("cluster-app") / "uvicorn.log"
    with app_server(env, log) as server:
        yield server
    assert server.tracebacks() == 0, log.read_text()[-4000:]


def user_slot(user: int) -> int:
    """The slot of every session key of ``user`` (the ``{tag}`` in its keys)."""
    return key_slot(user_tag(user).encode())


async def test_whole_cluster_paused(app: AppServer, cluster: Cluster) -> None:
    verdict = await run_fault(
        "redis cluster paused", app.url, BOUND, cluster.pause, cluster.resume, hold=BOUND + 1.5
    )
    summary = check(verdict)
    assert summary["503_latency_max_s"] >= BOUND - 0.1, "no call waited for the bound"


async def test_master_killed(app: AppServer, cluster: Cluster) -> None:
    owners = cluster.masters()
    victim_port = next(iter(owners))
    victim = next(s for s in cluster.servers if s.port == victim_port)
    lost = owners[victim_port]

    def on_victim(user: int) -> bool:
        return any(start <= user_slot(user) <= end for start, end in lost)

    users = 12
    assert any(on_victim(u) for u in range(1, users + 1)), "some user must live on the victim"
    assert not all(on_victim(u) for u in range(1, users + 1)), "and some elsewhere"
    verdict = await run_fault(
        "redis cluster master killed",
        app.url,
        BOUND,
        victim.stop,  # SIGKILL: a crash
        cluster.wait_ok,  # until the replica is promoted and every slot is served
        hold=0.0,
        users=users,
    )
    summary = check(verdict)
    elsewhere = [
        s for s in verdict.unavailable if s.kind in SESSION_KINDS and not on_victim(s.user)
    ]
    summary["session_503_on_other_masters"] = len(elsewhere)
    print(f"failover took {verdict.fault_end - verdict.fault_start:.2f}s; {summary}")
    by_kind: dict[str, int] = {}
    for sample in elsewhere:
        by_kind[sample.kind] = by_kind.get(sample.kind, 0) + 1
    when = [(round(x.started - verdict.fault_start, 2), round(x.elapsed, 2)) for x in elsewhere]
    assert elsewhere == [], f"session 503s on healthy masters: {by_kind} at {when}"
    assert any(s.kind in SESSION_KINDS and on_victim(s.user) for s in verdict.unavailable)
