"""The SDK's run handle: a tracking run that can also register the model it trained."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from steward.registry import ModelVersion, RegistryService
from steward.tracking import ActiveRun

__all__ = ["ModelRun", "adopt_run"]


class ModelRun(ActiveRun):
    """An :class:`~steward.tracking.ActiveRun` with :meth:`register_model`.

    Example:
        >>> with st.start_run("fraud") as run:  # doctest: +SKIP
        ...     model = HistGradientBoostingClassifier().fit(x, y)
        ...     run.register_model(model, name="fraud", sample_input=x[:100])
    """

    _registry: RegistryService

    def register_model(
        self,
        model: object,
        *,
        name: str,
        sample_input: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        compile: Literal["onnx"] | None = None,
        unsafe: bool = False,
        force: bool = False,
    ) -> ModelVersion:
        """Register ``model`` as the next version of ``name``, trained by this run.

        Metric values still buffered are written first, so the version's metrics
        snapshot holds everything logged so far. See
        :meth:`~steward.registry.RegistryService.register` for the arguments.
        """
        self.flush()
        return self._registry.register(
            model,
            name=name,
            run_id=self.id,
            sample_input=sample_input,
            signature=signature,
            flavor=flavor,
            description=description,
            tags=tags,
            compile=compile,
            unsafe=unsafe,
            force=force,
        )


def adopt_run(run: ActiveRun, registry: RegistryService) -> ModelRun:
    """Give a tracking run handle the registry's methods (same object, same state)."""
    run.__class__ = ModelRun
    adopted: ModelRun = run  # type: ignore[assignment]
    adopted._registry = registry
    return adopted
