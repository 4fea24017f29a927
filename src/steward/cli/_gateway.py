"""``steward gateway``: serve every deployment over HTTP (uvicorn, N worker processes)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from steward.cli._common import HomeOption
from steward.cli._output import err_console

__all__ = ["gateway"]

FACTORY = "steward.serving:create_app_from_env"


def gateway(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8700,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, max=64, help="Worker processes; each loads every deployment."
        ),
    ] = 1,
    insecure_local: Annotated[
        bool,
        typer.Option(
            "--insecure-local",
            help="Serve WITHOUT authentication, for development on this machine only.",
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Serve deployments: POST /v1/deployments/NAME/predict, /v1/feedback, /readyz, /metrics.

    Callers send 'Authorization: Bearer <token>' holding predict:NAME. Deployment
    changes (steward deployments update/rollback) reach every worker within ~1 s.
    """
    # Workers are separate processes: they read their settings from the environment.
    if home is not None:
        os.environ["STEWARD_HOME"] = str(home)
    os.environ["STEWARD_GATEWAY_HOST"] = host
    os.environ["STEWARD_GATEWAY_PORT"] = str(port)
    os.environ["STEWARD_GATEWAY_WORKERS"] = str(workers)
    os.environ["STEWARD_GATEWAY_INSECURE_LOCAL"] = "true" if insecure_local else "false"
    if insecure_local:
        err_console.print(
            "[bold red]" + "!" * 72 + "\n"
            "INSECURE LOCAL MODE: no authentication; anyone who can reach "
            f"{host}:{port} can call every deployment. Development only.\n" + "!" * 72 + "[/]"
        )
    uvicorn.run(
        FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
