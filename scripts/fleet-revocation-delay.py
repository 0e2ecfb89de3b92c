#!/usr/bin/env python3
"""Revocation delay between two processes on a PostgreSQL store, through the
Python package: process A revokes keys one at a time; process B, which
verifies them in a loop from its own replica, records when each is first
refused. Both read CLOCK_MONOTONIC (time.monotonic), one clock per machine.

    APIKEYS_LIB=target/release/libapikeys.so PYTHONPATH=ffi/python/src \\
        python3 scripts/fleet-revocation-delay.py postgres://postgres@127.0.0.1:5432/apikeys [rounds]

Prints p50 / p99 / max of (first refusal in B) - (revoke returned in A).
"""
import multiprocessing
import sys
import time

import apikeys


def watcher(url, secrets, ready, results):
    store = apikeys.KeyStore(url, pepper="delay")
    refused = {}
    pending = dict(enumerate(secrets))
    for secret in secrets:
        while True:
            try:
                store.verify(secret)
                break
            except apikeys.Unauthorized:
                time.sleep(0.001)  # not arrived yet
    ready.set()
    # A revokes in order: watch one key at a time, one verify per spin.
    for index, secret in pending.items():
        while True:
            try:
                store.verify(secret)
            except apikeys.Unauthorized:
                refused[index] = time.monotonic()
                break
    results.put(refused)


def main():
    url = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    writer = apikeys.KeyStore(url, pepper="delay")
    keys = [writer.generate("delay %d" % i) for i in range(rounds)]
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Event(), spawn.Queue()
    child = spawn.Process(
        target=watcher, args=(url, [k.secret for k in keys], ready, results)
    )
    child.start()
    ready.wait()
    committed = {}
    for index, key in enumerate(keys):
        writer.revoke(key.id)
        committed[index] = time.monotonic()
        time.sleep(0.005)
    refused = results.get()
    child.join()
    delays = sorted(max(0.0, refused[i] - committed[i]) for i in committed)
    pick = lambda p: delays[round((len(delays) - 1) * p)] * 1000
    print("revocation delay across processes over %d revocations: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (len(delays), pick(0.5), pick(0.99), delays[-1] * 1000))


if __name__ == "__main__":
    main()
