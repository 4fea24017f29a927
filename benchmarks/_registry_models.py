"""The model bench_registry.py measures, and the scripts that load it in cold processes.

One HistGradientBoostingClassifier over 30 numeric features, trained once per
benchmark run (seeded) and shared by every benchmark of the group.  The cold-load
scripts start their clock on their first line, so library imports count (they are
part of what a fresh serving process pays) while interpreter start-up, the same
for both sides, does not.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = 30
TRAIN_ROWS = 20_000
TEST_ROWS = 2_000
COLUMNS = [f"f{i}" for i in range(FEATURES)]


@functools.cache
def hgb_model() -> tuple[Any, pd.DataFrame]:
    """Return the fitted model and held-out rows (a DataFrame with columns f0..f29)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(7)
    X = rng.normal(size=(TRAIN_ROWS + TEST_ROWS, FEATURES))
    logit = X[:, 0] - 0.5 * X[:, 1] + X[:, 2] * X[:, 3] + 0.3 * np.sin(3 * X[:, 4])
    y = (logit + rng.logistic(size=len(X)) * 0.5 > 0).astype(np.int64)
    frame = pd.DataFrame(X, columns=COLUMNS)
    model = HistGradientBoostingClassifier(random_state=0)
    model.fit(frame[:TRAIN_ROWS], y[:TRAIN_ROWS])
    return model, frame[TRAIN_ROWS:].reset_index(drop=True)


# argv: steward home, path of one row (.npy).  Prints one JSON object on its last line.
STEWARD_COLD_LOAD = r"""
import time
start = time.perf_counter()
import json, sys
import numpy as np
import pandas as pd
from steward.registry import RegistryService
from steward.store import Store, StoreSettings
imported = time.perf_counter()
store = Store.open(StoreSettings(home=sys.argv[1]))
model = RegistryService(store).load("hgb:1")
loaded = time.perf_counter()
row = pd.DataFrame(np.load(sys.argv[2]), columns=[f"f{i}" for i in range(30)])
label = model.predict(row)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported,
                  "first_predict_s": done - loaded, "total_s": done - start,
                  "label": int(label[0])}))
"""

# argv: MLflow model directory, path of one row (.npy).
MLFLOW_COLD_LOAD = r"""
import time
start = time.perf_counter()
import json, sys
import numpy as np
import pandas as pd
import mlflow.pyfunc
imported = time.perf_counter()
model = mlflow.pyfunc.load_model(sys.argv[1])
loaded = time.perf_counter()
row = pd.DataFrame(np.load(sys.argv[2]), columns=[f"f{i}" for i in range(30)])
label = model.predict(row)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported,
                  "first_predict_s": done - loaded, "total_s": done - start,
                  "label": int(label[0])}))
"""

# argv: skops file of the model, output directory, serialization format, sample (.npy).
MLFLOW_SAVE = r"""
import json, sys, warnings
import numpy as np
import pandas as pd
import skops.io
import mlflow.sklearn
from mlflow.models import infer_signature
warnings.simplefilter("ignore")
source, target, fmt, sample = sys.argv[1:5]
model = skops.io.load(source, trusted=skops.io.get_untrusted_types(file=source))
frame = pd.DataFrame(np.load(sample), columns=[f"f{i}" for i in range(30)])
signature = infer_signature(frame, model.predict(frame))
# MLflow's skops format asks the caller to name the types it trusts (for HGB: TreePredictor).
trusted = skops.io.get_untrusted_types(file=source) if fmt == "default" else None
mlflow.sklearn.save_model(model, target, signature=signature, input_example=frame.head(3),
                          serialization_format=None if fmt == "default" else fmt,
                          skops_trusted_types=trusted)
print(json.dumps({"saved": target}))
"""


def run_cold(
    python: Path | str, script: str, *args: str, cwd: Path, pycache: Path
) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter ``python``; return the JSON of its last line.

    Bytecode goes to ``pycache`` (``PYTHONPYCACHEPREFIX``) even where the calling
    environment sets ``PYTHONDONTWRITEBYTECODE``: an installed package has its
    bytecode compiled, so a cold start that compiles every imported module would
    measure the compiler.  Run once untimed to fill it.  The environment of the
    benchmark's own venv is dropped, as for peers.
    """
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    done = subprocess.run(
        [str(python), "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python} exited {done.returncode}:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result
