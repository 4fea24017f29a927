"""Models held in a worker's memory under a budget: idle ones unloaded, reloaded on demand.

Each variant's model sits in a :class:`ModelSlot`. Its footprint is the growth
of the process's resident memory (RSS) while the model loads and warms, never
less than the artifact's size: an estimate (the first model of a process also
carries the libraries it imports; a reload may reuse memory the allocator kept),
but one measured on the real model, at no cost per request.

:class:`ModelResidency` keeps the sum of loaded footprints under the worker's
budget: after every load it unloads the least recently used slot that no request
is using, until the sum fits or only busy slots are left. A request marks its
slot busy with :meth:`ModelResidency.use`; an unloaded slot is reloaded there,
through the same verified loading path as at start, in a thread, before the
model's timeout starts counting; concurrent requests wait for the one reload.
A deployment whose model is unloaded stays loaded for readiness: it answers.
"""

from __future__ import annotations

import asyncio
import copy
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from steward.core import BackendUnavailableError, StewardError
from steward.registry import LoadedModel

__all__ = ["ModelResidency", "ModelSlot", "measure_load", "resident_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# ru_maxrss is in KiB on Linux, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def resident_bytes() -> int:
    """Return this process's resident memory in bytes (its peak where the OS gives no more)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * _MAXRSS_UNIT


def measure_load(load: Callable[[], LoadedModel]) -> tuple[LoadedModel, int, float]:
    """Run ``load``; return the model, the RSS growth in bytes (>= 0), and the seconds taken."""
    before = resident_bytes()
    started = time.perf_counter()
    model = load()
    seconds = time.perf_counter() - started
    return model, max(0, resident_bytes() - before), seconds


def _metadata_of(model: LoadedModel) -> LoadedModel:
    # What status and request checks read (signature, artifact, flavor) without the
    # deserialized model, so an unloaded slot frees the model's memory.
    stub = copy.copy(model)
    stub.model = None
    return stub


class ModelSlot:
    """One variant's model: loaded, or unloaded and reloadable through ``load``.

    Args:
        ref: the model version it holds (``fraud:7``), for messages.
        model: the loaded (and warmed) model.
        load: loads and warms the model again (blocking; the verified path).
        memory_bytes: RSS growth measured when ``model`` loaded.
        load_seconds: how long that took.
    """

    def __init__(
        self,
        ref: str,
        model: LoadedModel,
        *,
        load: Callable[[], LoadedModel],
        memory_bytes: int,
        load_seconds: float,
    ) -> None:
        self.ref = ref
        self._model: LoadedModel | None = model
        self._metadata = _metadata_of(model)
        self._load = load
        self._lock = threading.Lock()
        self.memory_bytes = memory_bytes
        self.artifact_bytes = int(model.version.artifact_size)
        self.load_seconds = load_seconds
        self.unloads = 0
        self.reloads = 0
        self.in_use = 0
        self.last_used = time.monotonic()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory now."""
        return self._model is not None

    @property
    def model(self) -> LoadedModel:
        """The model when loaded, else its metadata (signature, artifact, flavor) only."""
        return self._model or self._metadata

    @property
    def charged_bytes(self) -> int:
        """What the model counts against the budget: its RSS growth, at least its artifact."""
        return max(self.memory_bytes, self.artifact_bytes)

    def current(self) -> LoadedModel:
        """Return the loaded model, reloading it first if it was unloaded (blocking)."""
        model = self._model
        return model if model is not None else self.reload()

    def reload(self) -> LoadedModel:
        """Load the model again unless it is loaded; one load at a time (blocking).

        Raises:
            BackendUnavailableError: the model could not be loaded or warmed again.
        """
        with self._lock:
            if self._model is not None:
                return self._model
            try:
                model, grown, seconds = measure_load(self._load)
            except StewardError as exc:
                raise BackendUnavailableError(
                    f"model {self.ref} was unloaded under the memory budget and could not be "
                    f"loaded again: {exc}"
                ) from exc
            self.memory_bytes = max(self.memory_bytes, grown)
            self.load_seconds = seconds
            self.reloads += 1
            self._model = model
            return model

    def unload(self) -> bool:
        """Drop the model from memory; return False when it is busy loading."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._model is None:
                return False
            self._model = None
            self.unloads += 1
            return True
        finally:
            self._lock.release()

    def describe(self) -> dict[str, Any]:
        """Facts for the status endpoint."""
        return {
            "loaded": self.loaded,
            "memory_bytes": self.memory_bytes,
            "charged_bytes": self.charged_bytes,
            "unloads": self.unloads,
            "reloads": self.reloads,
        }


class _Use:
    """``async with residency.use(slot)``: the slot is busy (never unloaded) and loaded."""

    __slots__ = ("_residency", "_slot")

    def __init__(self, residency: ModelResidency, slot: ModelSlot) -> None:
        self._residency = residency
        self._slot = slot

    async def __aenter__(self) -> ModelSlot:
        slot = self._slot
        slot.in_use += 1
        slot.last_used = time.monotonic()
        if not slot.loaded:
            try:
                await asyncio.to_thread(slot.reload)
            except BaseException:
                slot.in_use -= 1
                raise
            self._residency.enforce()
        return slot

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._slot.in_use -= 1


class ModelResidency:
    """Keeps the loaded models of one worker within its memory budget.

    Args:
        budget_bytes: what loaded models may hold together (None: no budget).
        slots: every slot currently serving (of every deployment's revision in force).
    """

    def __init__(self, budget_bytes: int | None, slots: Callable[[], Iterable[ModelSlot]]) -> None:
        self.budget_bytes = budget_bytes
        self._slots = slots

    def use(self, slot: ModelSlot) -> _Use:
        """Return a context that keeps ``slot`` loaded while a request uses it.

        Raises (on enter):
            BackendUnavailableError: the unloaded model could not be loaded again.
        """
        return _Use(self, slot)

    def loaded_bytes(self) -> int:
        """Return what the loaded models are charged, together."""
        return sum(s.charged_bytes for s in self._slots() if s.loaded)

    def enforce(self) -> list[ModelSlot]:
        """Unload least recently used idle models until the loaded ones fit; return them."""
        budget = self.budget_bytes
        if budget is None:
            return []
        loaded = [s for s in self._slots() if s.loaded]
        total = sum(s.charged_bytes for s in loaded)
        unloaded: list[ModelSlot] = []
        for slot in sorted((s for s in loaded if s.in_use == 0), key=lambda s: s.last_used):
            if total <= budget:
                break
            if slot.unload():
                total -= slot.charged_bytes
                unloaded.append(slot)
        return unloaded

    def describe(self) -> dict[str, Any]:
        """The worker's budget and what loaded models hold, for status."""
        return {"budget_bytes": self.budget_bytes, "loaded_bytes": self.loaded_bytes()}
