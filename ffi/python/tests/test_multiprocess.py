"""Several worker processes on one store in shared mode, as under gunicorn:
when one revokes a key, every other rejects it on its next verify."""

from __future__ import annotations

import multiprocessing
from typing import Any, Dict, List

from apikeys import KeyStore, Unauthorized

from conftest import PEPPER

FORK = multiprocessing.get_context("fork")
WORKERS = 4
REVOKER = 0


def _worker(number: int, path: str, secret: str, key_id: str, before: Any, after: Any, results: Any) -> None:
    """One worker: opens its own handle after the fork, as a server worker must."""
    report: Dict[str, Any] = {"worker": number}
    try:
        with KeyStore(path, pepper=PEPPER, shared=True) as store:
            report["before"] = store.verify(secret).id
            before.wait(60)  # every worker has accepted the key
            if number == REVOKER:
                report["revoked"] = store.revoke(key_id)
            after.wait(60)  # the revocation has returned
            try:
                store.verify(secret)
                report["after"] = "accepted"
            except Unauthorized as refused:
                report["after"] = refused.reason
    except BaseException as error:  # reported to the parent, which fails the test
        report["error"] = repr(error)
    results.put(report)


def test_a_revocation_in_one_worker_is_seen_by_every_other(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as parent:
        key = parent.generate("Shared", env="prod")
        before, after = FORK.Barrier(WORKERS), FORK.Barrier(WORKERS)
        results = FORK.Queue()
        workers = [
            FORK.Process(target=_worker, args=(n, store_path, key.secret, key.id, before, after, results))
            for n in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        reports: List[Dict[str, Any]] = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        reports.sort(key=lambda report: report["worker"])
        for report in reports:
            assert "error" not in report, report
            assert report["before"] == key.id, report
            assert report["after"] == "revoked", report
        assert reports[REVOKER]["revoked"] is True
        # The parent, which did nothing, sees it too.
        try:
            parent.verify(key.secret)
            outcome = "accepted"
        except Unauthorized as refused:
            outcome = refused.reason
        assert outcome == "revoked"


def _generate_in_worker(number: int, path: str, results: Any) -> None:
    try:
        with KeyStore(path, pepper=PEPPER, shared=True) as store:
            results.put(("ok", store.generate(f"worker {number}").secret))
    except BaseException as error:
        results.put(("error", repr(error)))


def test_keys_generated_by_workers_are_verified_by_the_parent(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER, shared=True) as parent:
        results = FORK.Queue()
        workers = [FORK.Process(target=_generate_in_worker, args=(n, store_path, results)) for n in range(WORKERS)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(60)
        assert all(kind == "ok" for kind, _ in outcomes), outcomes
        names = sorted(parent.verify(secret).name for _, secret in outcomes)
        assert names == [f"worker {n}" for n in range(WORKERS)]
        assert len(parent.list()) == WORKERS
