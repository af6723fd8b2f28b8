"""The in-memory engine: the node reads its file and keeps harmonised code arrays."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from numpy._core import multiarray as np_multiarray

from indicators.spec import TableSpec
from indicators.variables import Variable
from node.config import NodeConfig
from node.engine import CountPlan, TableCounts, compute_table, count_plan, require_variables
from node.fingerprint import harmonised_digest
from node.harmonise import Coverage, Harmonised, WeightClipping, harmonise
from node.source import load_frame

__all__ = ["MemoryEngine", "known_shares"]

_PAGES_LOCK = threading.Lock()
_PAGES_USERS: list[None] = []  # loads now running with numpy's huge-page requests off
_PAGES_BEFORE: list[bool] = []  # the setting before the first of them
_MAX_PLANS = 16  # count plans an engine keeps (the first asked is dropped first)
_MAX_PLAN_KEYS = 1 << 12  # and only small ones: a plan's fold holds one index per key


class MemoryEngine:
    """Tables counted by `node.engine` over code arrays held in the node's memory.

    Args:
        data: The harmonised microdata.
    """

    name = "memory"

    def __init__(self, data: Harmonised) -> None:
        self.data = data
        self.rows = data.rows
        self.weighted = data.weights is not None
        self.provided: tuple[str, ...] = tuple(data.codes)
        self.coverage: dict[str, Coverage] = data.coverage
        self.clipping: WeightClipping | None = data.clipping
        self._plans: dict[TableSpec, CountPlan] = {}
        self._plans_lock = threading.Lock()

    @classmethod
    def load(cls, config: NodeConfig) -> MemoryEngine:
        """Read and harmonise the period's file; give the file's memory back.

        Only the code arrays stay: each column goes once harmonised, and the C allocator
        is asked to return its free pages to the system (glibc keeps them otherwise).
        While loading, numpy does not ask for transparent huge pages (see `_small_pages`).
        """
        with _small_pages():
            engine = cls(harmonise(load_frame(config), config))
        gc.collect()
        _trim()
        return engine

    def variable(self, name: str) -> Variable:
        """A provided variable (or the node's own local one) by name."""
        return self.data.variable(name)

    def known_shares(self) -> dict[str, float]:
        """Per provided variable, the share of persons whose value is known."""
        return known_shares(self.data)

    def require(self, spec: TableSpec) -> None:
        """Raise QueryError when the node does not provide a variable the table reads."""
        require_variables(self.data, spec)

    def count(self, spec: TableSpec) -> TableCounts:
        """The table's true counts.

        The data never change, so the table's `count_plan` (its age classes and fold,
        the part of the count that does not read the rows) is kept for the next call
        asking the same table: a node is asked the same few tables again and again.
        """
        with self._plans_lock:
            plan = self._plans.get(spec)
        if plan is None:
            plan = count_plan(self.data, spec)
            if plan.n_keys <= _MAX_PLAN_KEYS:
                with self._plans_lock:
                    if len(self._plans) >= _MAX_PLANS:
                        del self._plans[next(iter(self._plans))]  # the oldest
                    self._plans[spec] = plan
        return compute_table(self.data, spec, plan)

    def content_digest(self) -> str:
        """Digest of the harmonised arrays in row order (`node.fingerprint`)."""
        return harmonised_digest(self.data, sort=False)

    def close(self) -> None:
        """Nothing to release."""


def known_shares(data: Harmonised) -> dict[str, float]:
    """Mapped variables: their mapping coverage; derived ones: the share not ``UNK``."""
    shares = {name: cov.mapped_share for name, cov in data.coverage.items()}
    for name, codes in data.codes.items():
        if name not in shares:
            known = codes != len(data.variable(name).codes) - 1
            if data.persons is None:
                shares[name] = float(np.mean(known)) if codes.size else 0.0
            else:
                shares[name] = float(data.persons[known].sum()) / max(data.rows, 1)
    return shares


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Numpy's large arrays without ``madvise(MADV_HUGEPAGE)`` for the ``with`` block.

    Loading fills many short-lived arrays of a row each (80 MB at 10M rows). Where the
    kernel compacts memory to find a huge page for such a request (``defrag = madvise``,
    the common setting), a fragmented machine spent 0.4 s of system time on one 80 MB
    array, against 0.04 s with ordinary pages; that was most of the start time's spread
    between runs (`bench/memory_engine_bench.py`). Numpy's switch for it is private, so
    a numpy without it is left as it is.
    """
    switch = getattr(np_multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    with _PAGES_LOCK:  # loads in several threads: the first switches off, the last back
        if not _PAGES_USERS:
            _PAGES_BEFORE[:] = [bool(switch(False))]
        _PAGES_USERS.append(None)
    try:
        yield
    finally:
        with _PAGES_LOCK:
            _PAGES_USERS.pop()
            if not _PAGES_USERS:
                switch(_PAGES_BEFORE[0])


def _trim() -> None:
    """Return free pages to the system: Arrow's pool's, then glibc's (``malloc_trim``)."""
    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
