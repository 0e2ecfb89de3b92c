"""One handle shared by the threads of a process (gthread workers)."""

from __future__ import annotations

import threading
from typing import List

from apikeys import KeyStore, Unauthorized

THREADS = 8
VERIFIES_PER_THREAD = 200


def test_one_handle_serves_many_threads_and_counts_every_use(store: KeyStore) -> None:
    key = store.generate("Threads", scopes=["contacts:read"])
    failures: List[BaseException] = []

    def serve() -> None:
        try:
            for _ in range(VERIFIES_PER_THREAD):
                store.verify(key.secret, scope="contacts:read")
                try:
                    store.verify("flz_sk_not_a_key")
                except Unauthorized as refused:
                    # Each thread reads its own last error: never another thread's.
                    assert refused.reason == "malformed", refused.detail
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=serve) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    store.flush()
    (info,) = store.list()
    assert info.use_count == THREADS * VERIFIES_PER_THREAD
