"""An ordered, memory-bounded parallel map over streams of tasks.

`multiprocessing.Pool.imap` reads its whole input as fast as it can (unbounded memory on a
large corpus); `OrderedPool.map` keeps at most `max_pending` tasks in flight and yields
results in input order, so the output is deterministic for any number of processes. One
pool serves several maps (both splits of a corpus) so its processes start only once.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class OrderedPool:
    """`num_proc` forked processes (none when 1: tasks then run in this process)."""

    def __init__(self, num_proc: int, initializer: Callable[..., None] | None = None,
                 initargs: tuple = ()) -> None:
        self.num_proc = num_proc
        self._pool = None
        if num_proc > 1:
            # fork: workers start in milliseconds and inherit imported modules and objects
            # prepared by the parent (a loaded tokenizer).
            self._pool = multiprocessing.get_context("fork").Pool(num_proc, initializer, initargs)
        elif initializer is not None:
            initializer(*initargs)

    def map(self, func: Callable[[Any], Any], tasks: Iterable[Any],
            max_pending: int | None = None) -> Iterator[Any]:
        """`map(func, tasks)` in order, with at most `max_pending` tasks in flight."""
        if self._pool is None:
            yield from map(func, tasks)
            return
        limit = max_pending or 2 * self.num_proc
        pending: deque = deque()
        for task in tasks:
            pending.append(self._pool.apply_async(func, (task,)))
            if len(pending) >= limit:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        """Stop the processes."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
