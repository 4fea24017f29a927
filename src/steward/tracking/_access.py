"""Who may track: the scopes of tracking's reads, writes and collection.

Runs are the lineage of models (a version records the run that trained it), so
tracking uses the models' scopes rather than a family of its own: a token or role
that may read models may read the runs behind them, and whoever may register
models may record the runs that train them.

========================================================= ================
call                                                      scope
========================================================= ================
read experiments, runs, metrics, artifacts, datasets      ``models:read``
create or archive experiments; start, log, tag, note,     ``models:write``
end, archive or restore runs; log artifacts and datasets
collect artifacts of archived runs (deletes bytes)        ``admin``
========================================================= ================

Checks go through ``Store.authorize`` before any unit of work opens, so a
denial is audited (``access.denied``) and nothing is written. The resource
names what was asked for (``experiment:fraud``, ``run:<id>``) for the audit
record; role bindings on models or teams do not extend to runs, so only global
grants count. A metric value costs no check: a run handle is authorized when it
is made and again once per flush, never per value.
"""

from __future__ import annotations

from steward.core import ADMIN_SCOPE

__all__ = ["COLLECT_SCOPE", "READ_SCOPE", "WRITE_SCOPE", "experiment_resource", "run_resource"]

READ_SCOPE = "models:read"
WRITE_SCOPE = "models:write"
COLLECT_SCOPE = ADMIN_SCOPE

_MAX_ID = 200  # what reaches the audit record of a denial, whatever the caller passed


def run_resource(run_id: object) -> str:
    """Return the resource a check on one run names (``run:<id>``)."""
    return f"run:{str(run_id)[:_MAX_ID]}"


def experiment_resource(name_or_id: object) -> str:
    """Return the resource a check on one experiment names (``experiment:<name>``)."""
    return f"experiment:{str(name_or_id)[:_MAX_ID]}"
