"""The worker pool that hosted nodes share (`node.server._CallPool`): each server runs at
most its limit of calls at once and queues the rest, so one busy node never holds every
worker of the process, and every queued call still runs."""

from __future__ import annotations

import threading
import time

from node.server import _CallPool, worker_pool


def test_a_busy_server_holds_at_most_its_limit_of_the_shared_workers() -> None:
    shared = worker_pool(8)
    busy, quiet = _CallPool(shared, limit=2), _CallPool(shared, limit=2)
    release = threading.Event()
    lock = threading.Lock()
    running = {"now": 0, "most": 0}

    def blocked(i: int) -> int:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        release.wait(10)
        with lock:
            running["now"] -= 1
        return i

    futures = [busy.submit(blocked, i) for i in range(10)]
    deadline = time.monotonic() + 10
    while running["now"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # room for a third call to start, if the limit let it
    assert busy.running == 2 and running["most"] == 2  # the other 8 wait their turn
    # a quiet server sharing the pool is served at once, the busy one notwithstanding
    assert quiet.submit(lambda: "served").result(timeout=5) == "served"
    release.set()
    assert [f.result(timeout=10) for f in futures] == list(range(10))
    assert running["most"] == 2 and busy.running == 0 and quiet.running == 0
    failed = busy.submit(lambda: 1 / 0)
    assert isinstance(failed.exception(timeout=5), ZeroDivisionError)
    assert busy.running == 0
    shared.shutdown()


def test_a_hosted_node_never_holds_every_worker_of_a_shared_pool() -> None:
    from node.hosting import call_limit

    assert call_limit(2, 300) == 1  # one hanging node leaves the other nodes a worker
    assert call_limit(4, 2) == 3
    assert call_limit(16, 300) == 8  # and never more than 8, as before
    assert call_limit(1, 300) == 1  # one worker: nothing left to spare
    assert call_limit(2, 1) == 2 and call_limit(16, 1) == 8  # one node has them all
