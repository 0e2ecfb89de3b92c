"""The benchmark behind bench.sh (run that): for gunicorn + Flask and
uvicorn + FastAPI (as installed, and with the fix of uvicorn issue #3149:
apps/uvicorn_nodelay.py; FastAPI with the package's dependency, and with its
ASGI middleware instead), 4 workers, store in shared mode, requests/s
measured by wrk (2 threads, 16 connections) of

  auth     /contacts: the key checked by the package's integration
  no auth  /public:   the same server and app, no check
  sanctum  /sanctum:  SHA-256 hex lookup in PostgreSQL + UPDATE last_used_at

taking turns in the same run, and the ratios auth / no auth (target >= 0.9)
and auth / sanctum (target > 1): of the best rate of each route, and the
median of each round's own auth / no auth (the two measured one after the
other, so a change of the machine's load between rounds cancels out). It measures; it asserts nothing but that
every answer was the expected 200 (wrk's "Non-2xx" count must be absent).

Environment: PG_URL (a PostgreSQL database to create the peer's table in),
BENCH_SECONDS (10), BENCH_ROUNDS (3: each route measured this many times,
in turns; the best is reported, the others printed), BENCH_KEYS (10000 keys
in the store and rows in the table).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import statistics
import subprocess
import sys
from typing import Dict, List, Tuple

import harness

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
KEYS = int(os.environ.get("BENCH_KEYS", "10000"))
PG_URL = os.environ["PG_URL"]

ROUTES = [("auth", "/contacts"), ("no auth", "/public"), ("sanctum", "/sanctum")]


def seed_postgres(count: int) -> str:
    """The peer's table, Laravel Sanctum's personal_access_tokens shape, with
    `count` rows; returns the plaintext token of one of them."""
    import psycopg

    tokens = [secrets.token_urlsafe(30) for _ in range(count)]
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS personal_access_tokens")
        connection.execute(
            "CREATE TABLE personal_access_tokens (id bigserial PRIMARY KEY, tokenable_id bigint NOT NULL,"
            " name text NOT NULL, token char(64) NOT NULL UNIQUE, abilities text,"
            " last_used_at timestamptz, expires_at timestamptz, created_at timestamptz DEFAULT now())"
        )
        with connection.cursor() as cursor:
            with cursor.copy("COPY personal_access_tokens (tokenable_id, name, token, abilities) FROM STDIN") as copy:
                for number, token in enumerate(tokens):
                    copy.write_row((number, f"token {number}", hashlib.sha256(token.encode()).hexdigest(), '["*"]'))
        connection.execute("ANALYZE personal_access_tokens")
    return tokens[count // 2]


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def wrk(port: int, path: str, authorization: str, workers: List[int]) -> Tuple[float, float]:
    """(requests/s, worker CPU microseconds per request) of one wrk run."""
    cpu_before = cpu_seconds(workers)
    done = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{SECONDS}s", "-H", f"Authorization: {authorization}", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=SECONDS + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    cpu = cpu_seconds(workers) - cpu_before
    if "Non-2xx" in done.stdout:
        raise RuntimeError(f"{path}: some answers were not 200:\n{done.stdout}")
    requests = int(re.search(r"(\d+) requests in", done.stdout).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1)), cpu / requests * 1e6


def bench(name: str, start, stage: harness.Stage, key: str, token: str) -> Dict[str, List[Tuple[float, float]]]:
    server = start(stage, extra_env={"PG_URL": PG_URL})
    workers = server.worker_pids()
    results: Dict[str, List[Tuple[float, float]]] = {route: [] for route, _ in ROUTES}
    try:
        for route, path in ROUTES:  # warm up: every worker opens its store and connection
            wrk_seconds = 2
            subprocess.run(["wrk", "-t2", "-c16", f"-d{wrk_seconds}s", "-H",
                            f"Authorization: Bearer {token if route == 'sanctum' else key}",
                            f"http://127.0.0.1:{server.port}{path}"], capture_output=True, timeout=60)
        for _ in range(ROUNDS):
            for route, path in ROUTES:
                secret = token if route == "sanctum" else key
                results[route].append(wrk(server.port, path, f"Bearer {secret}", workers))
                rate, cpu = results[route][-1]
                print(f"  {name:<30} {route:<8} {rate:>9.0f} req/s {cpu:>8.0f} us CPU/request", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return results


def main() -> None:
    stage = harness.Stage()
    try:
        keys = stage.generate("Bench", "contacts:read", count=KEYS)
        key = keys[len(keys) // 2]["key"]
        token = seed_postgres(KEYS)
        table: List[Tuple[str, Dict[str, List[Tuple[float, float]]]]] = []
        servers = (
            ("gunicorn + Flask", harness.start_gunicorn),
            ("uvicorn + FastAPI", harness.start_uvicorn),
            # uvicorn issue #3149: without TCP_NODELAY, --workers N answers
            # every keep-alive request after the first ~40 ms late.
            ("uvicorn + FastAPI, #3149 fixed", lambda stage, extra_env: harness.start_uvicorn(
                stage, extra_env=extra_env, nodelay_fix=True)),
            # The ASGI middleware form (apps/fastapi_middleware_app.py): no
            # FastAPI dependency to solve per request.
            ("uvicorn + FastAPI middleware, #3149 fixed", lambda stage, extra_env: harness.start_uvicorn(
                stage, extra_env=extra_env, nodelay_fix=True, app="fastapi_middleware_app:app")),
        )
        for name, start in servers:
            table.append((name, bench(name, start, stage, key, token)))
    finally:
        stage.cleanup()

    load = os.getloadavg()
    print(f"\n{KEYS} keys / rows; wrk -t2 -c16 -d{SECONDS}s; best of {ROUNDS} rounds taken in turns; "
          f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print("| server | apikeys req/s | no auth | ratio | paired ratio (median) | Sanctum-style on PostgreSQL | apikeys / Sanctum-style |")
    print("|---|---|---|---|---|---|---|")
    for name, results in table:
        auth, plain, peer = (max(rate for rate, _ in results[route]) for route, _ in ROUTES)
        paired = statistics.median(a / p for (a, _), (p, _) in zip(results["auth"], results["no auth"]))
        print(f"| {name} | {auth:,.0f} | {plain:,.0f} | {auth / plain:.2f} | {paired:.2f} | {peer:,.0f} | {auth / peer:.2f} |")
    # Throughput on a shared machine moves with its load; the CPU the
    # workers spend per request moves far less. no auth / auth is the
    # throughput ratio a CPU-bound server would reach.
    print("\nworkers' CPU per request (us, lowest of the rounds; the peer's excludes PostgreSQL's own):")
    print("| server | apikeys | no auth | no auth / apikeys | Sanctum-style |")
    print("|---|---|---|---|---|")
    for name, results in table:
        auth, plain, peer = (min(cpu for _, cpu in results[route]) for route, _ in ROUTES)
        print(f"| {name} | {auth:,.0f} | {plain:,.0f} | {plain / auth:.2f} | {peer:,.0f} |")
    print("\nevery round (req/s, us CPU/request):")
    for name, results in table:
        for route, _ in ROUTES:
            print(f"  {name:<30} {route:<8} " + "  ".join(f"{rate:,.0f} ({cpu:,.0f})" for rate, cpu in results[route]))


if __name__ == "__main__":
    main()
