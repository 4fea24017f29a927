"""Bandit rewards from ``/v1/feedback``, whichever gateway worker served the request.

A worker's bandit policy remembers the arm of each request it routed. With N
worker processes, feedback often reaches a worker that did not serve the
request: that worker reads the request's revision and variant from the
prediction log (every worker writes there; a ``durable`` record is on disk
before its answer left) and credits the arm by name::

    feedback(request_id="r1", reward=1)
      -> this worker routed r1?          credit its remembered arm
      -> else the log has r1 (revision 3, variant "b", not test, not shadow)
         and this is its first reward?   credit arm "b" of revision 3's bandit
      -> else                            nothing credited (the feedback is logged)

Test traffic (the override header) never reaches a bandit, and a request
rewarded once is not credited again from the log. Log lookups scan the live
segments, so at most ``max_lookups`` run at once per worker, off the event loop.
"""

from __future__ import annotations

import asyncio

from steward.core import NotFoundError
from steward.serving._predlog import PredictionLog
from steward.serving._runtime import DeploymentRuntime

__all__ = ["BanditRewards"]

_SERVED = (
    "SELECT p.revision, p.variant, "
    "(SELECT count(*) FROM feedback f "
    " WHERE f.request_id = p.request_id AND f.reward IS NOT NULL) AS rewards "
    "FROM predictions p "
    "WHERE p.request_id = ? AND p.deployment = ? AND NOT p.shadow AND NOT p.test "
    "LIMIT 1"
)


class BanditRewards:
    """Credit feedback rewards to the arm that served a request, in any worker.

    Args:
        log: the prediction log the gateway's workers write (read here).
        max_lookups: log lookups allowed at once.
    """

    def __init__(self, log: PredictionLog, *, max_lookups: int = 2) -> None:
        self._log = log
        self._lookups = asyncio.Semaphore(max_lookups)

    async def credit(
        self, runtime: DeploymentRuntime, request_id: str, reward: float
    ) -> str | None:
        """Credit ``reward`` to the arm that served ``request_id``; return the arm, or None.

        The reward is logged by the caller before; here the bandit learns from it.
        None: the deployment is no bandit, the request is not in the log (yet),
        was test traffic, was served by another revision, or was rewarded before.

        Raises:
            InvalidInputError: the policy cannot use the reward (Thompson sampling
                takes 0 or 1).
        """
        bandit = runtime.bandit
        if bandit is None:
            return None
        try:
            return bandit.reward(request_id, reward)
        except NotFoundError:
            pass  # routed by another worker (or forgotten): the log knows
        async with self._lookups:
            rows = await asyncio.to_thread(self._log.query, _SERVED, [request_id, runtime.name])
        served = rows.to_pylist()
        if not served:
            return None
        row = served[0]
        if row["revision"] != runtime.revision.revision or row["rewards"] > 1:
            return None
        return bandit.reward(request_id, reward, arm=row["variant"])
