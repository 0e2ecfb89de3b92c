"""The Sanctum-style peer the benchmark measures beside apikeys: what Laravel
Sanctum and many Django apps do on every request. The token's SHA-256 hex
is looked up in a PostgreSQL table, then `last_used_at` is updated, each in
its own autocommitted statement, on one connection per worker process
(opened on first use, after the fork). psycopg 3 (requirements/bench.txt).
"""

import asyncio
import hashlib
import os

UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'

SELECT = "SELECT id FROM personal_access_tokens WHERE token = %s"
UPDATE = "UPDATE personal_access_tokens SET last_used_at = now() WHERE id = %s"

_connection = None
_async_connection = None
_async_lock = None


def _digest(header):
    if not header or not header.startswith("Bearer "):
        return None
    return hashlib.sha256(header[7:].strip().encode()).hexdigest()


def sync_check(header):
    global _connection
    digest = _digest(header)
    if digest is None:
        return None
    if _connection is None:
        import psycopg

        _connection = psycopg.connect(os.environ["PG_URL"], autocommit=True)
    row = _connection.execute(SELECT, (digest,)).fetchone()
    if row is None:
        return None
    _connection.execute(UPDATE, (row[0],))
    return row[0]


async def async_check(header):
    global _async_connection, _async_lock
    digest = _digest(header)
    if digest is None:
        return None
    if _async_lock is None:
        _async_lock = asyncio.Lock()
    async with _async_lock:  # one connection per worker: one query at a time
        if _async_connection is None:
            import psycopg

            _async_connection = await psycopg.AsyncConnection.connect(os.environ["PG_URL"], autocommit=True)
        cursor = await _async_connection.execute(SELECT, (digest,))
        row = await cursor.fetchone()
        if row is None:
            return None
        await _async_connection.execute(UPDATE, (row[0],))
        return row[0]
