/* The cost of one apikeys_key_verify call from C, on a store of N keys,
 * in exclusive and in shared mode. A measurement, not a test: nothing is
 * asserted about time.
 *
 * Build against the release library and run on a tmpfs directory (the
 * generation of N keys is durable, one fsync each):
 *   cargo build --release -p apikeys-ffi
 *   gcc -std=c11 -O2 -I include ffi/tests/c/bench_verify.c -o /tmp/bench_verify \
 *       -L target/release -lapikeys -Wl,-rpath,$PWD/target/release
 *   /tmp/bench_verify /dev/shm/apikeys-bench 100000
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apikeys.h"

#define SAMPLE_KEYS 1000
#define CALLS 20000

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fail(const char *what, apikeys_status status) {
    fprintf(stderr, "%s: %s (%s)\n", what, apikeys_status_str(status), apikeys_last_error());
    exit(1);
}

/* Median and 99th percentile of CALLS verifies of known keys, in ns. */
static void measure(apikeys_store *store, char (*secrets)[64], const char *label) {
    static double samples[CALLS];
    unsigned seed = 12345;
    for (int i = 0; i < CALLS; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *secret = secrets[(seed >> 8) % SAMPLE_KEYS];
        size_t len = strlen(secret);
        double start = now_ns();
        apikeys_status status = apikeys_key_verify(store, secret, len, NULL, 0, NULL);
        samples[i] = now_ns() - start;
        if (status != APIKEYS_OK) {
            fail("verify", status);
        }
    }
    qsort(samples, CALLS, sizeof samples[0], compare);
    printf("%-10s verify: median %.0f ns, p99 %.0f ns (%d calls)\n", label, samples[CALLS / 2],
           samples[CALLS * 99 / 100], CALLS);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <new store path> <number of keys>\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    long keys = strtol(argv[2], NULL, 10);
    if (keys < SAMPLE_KEYS) {
        fprintf(stderr, "at least %d keys\n", SAMPLE_KEYS);
        return 2;
    }
    remove(path);
    static char secrets[SAMPLE_KEYS][64];
    apikeys_store *store = NULL;
    apikeys_status status = apikeys_store_open(path, strlen(path), NULL, 0, 0, &store);
    if (status != APIKEYS_OK) {
        fail("open", status);
    }
    double start = now_ns();
    for (long i = 0; i < keys; i++) {
        apikeys_key *key = NULL;
        status = apikeys_key_generate(store, "bench", 5, "prod", 4, "contacts:*", 10, NULL, 0, 0,
                                      &key);
        if (status != APIKEYS_OK) {
            fail("generate", status);
        }
        /* Keep an evenly spread sample of secrets, in memory only. */
        if (i % (keys / SAMPLE_KEYS) == 0 && i / (keys / SAMPLE_KEYS) < SAMPLE_KEYS) {
            const char *text = NULL;
            size_t len = 0;
            apikeys_key_secret(key, &text, &len);
            memcpy(secrets[i / (keys / SAMPLE_KEYS)], text, len + 1);
        }
        apikeys_key_free(key);
    }
    printf("generated %ld keys in %.1f s\n", keys, (now_ns() - start) / 1e9);

    measure(store, secrets, "exclusive");
    apikeys_store_close(store);

    store = NULL;
    status = apikeys_store_open(path, strlen(path), NULL, 0, APIKEYS_OPEN_SHARED, &store);
    if (status != APIKEYS_OK) {
        fail("open shared", status);
    }
    measure(store, secrets, "shared");
    apikeys_store_close(store);
    memset(secrets, 0, sizeof secrets);
    remove(path);
    return 0;
}
