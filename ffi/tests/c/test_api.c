/* Every exported function of the apikeys C ABI, as a host calls it: the
 * successful paths, then NULL arguments, bad UTF-8, embedded NULs, oversize
 * strings, wrong pepper, corrupt files, every verify outcome, list filters,
 * rotation, revocation, header parsing, HTTP answers and threads.
 *
 * Usage: test_api <empty scratch directory> */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "check.h"

#define LEN(literal) (sizeof(literal) - 1)
#define MIB (1024 * 1024)

static char scratch[512];

static const char *scratch_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    return path;
}

static apikeys_store *open_store(const char *name, const char *pepper, uint32_t flags) {
    const char *path = scratch_path(name);
    apikeys_store *store = NULL;
    size_t pepper_len = pepper ? strlen(pepper) : 0;
    CHECK_STATUS(apikeys_store_open(path, strlen(path), (const uint8_t *)pepper, pepper_len, flags,
                                    &store),
                 APIKEYS_OK);
    CHECK(store != NULL);
    return store;
}

/* Generates a key and copies its secret into `secret` (at least 64 bytes). */
static apikeys_key *generate(apikeys_store *store, const char *name, const char *env,
                             const char *scopes, char *secret) {
    apikeys_key *key = NULL;
    CHECK_STATUS(apikeys_key_generate(store, name, strlen(name), env, env ? strlen(env) : 0,
                                      scopes, scopes ? strlen(scopes) : 0, NULL, 0, 0, &key),
                 APIKEYS_OK);
    const char *text = NULL;
    size_t len = 0;
    CHECK_STATUS(apikeys_key_secret(key, &text, &len), APIKEYS_OK);
    CHECK(len > 0 && len < 64 && strlen(text) == len);
    memcpy(secret, text, len + 1);
    return key;
}

static const char *key_id(const apikeys_key *key) {
    const struct apikeys_key_info *info = NULL;
    CHECK_STATUS(apikeys_key_info(key, &info), APIKEYS_OK);
    return info ? info->id : "";
}

/* A key's usage as `apikeys_key_list` shows it. */
struct listed_usage {
    int seen;
    uint64_t use_count;
    int64_t last_used;
    int64_t created_at;
};

static struct listed_usage listed_usage(apikeys_store *store, const apikeys_key *key) {
    struct listed_usage found = {0, 0, 0, 0};
    apikeys_list *list = NULL;
    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_ALL, 0, &list), APIKEYS_OK);
    size_t count = 0;
    CHECK_STATUS(apikeys_list_len(list, &count), APIKEYS_OK);
    for (size_t i = 0; i < count; i++) {
        const struct apikeys_key_info *listed = NULL;
        CHECK_STATUS(apikeys_list_get(list, i, &listed), APIKEYS_OK);
        if (listed && strcmp(listed->id, key_id(key)) == 0) {
            found.seen = 1;
            found.use_count = listed->use_count;
            found.last_used = listed->last_used;
            found.created_at = listed->created_at;
        }
    }
    apikeys_list_free(list);
    return found;
}

static void test_static_strings(void) {
    CHECK_STR(apikeys_last_error(), "");  /* nothing has failed on this thread yet */
    const char *version = apikeys_version();
    CHECK(version != NULL && strchr(version, '.') != NULL);

    const uint32_t known[] = {0, 1, 2, 3, 100, 101, 102, 103, 104, 105,
                              200, 201, 202, 203, 204, 205, 206, 207, 208, 209,
                              900};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *text = apikeys_status_str(known[i]);
        CHECK(text != NULL && text[0] != '\0' && strcmp(text, "unknown status") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(text, apikeys_status_str(known[j])) != 0);
        }
    }
    const uint32_t unknown[] = {4, 99, 106, 199, 210, 899, 901, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STR(apikeys_status_str(unknown[i]), "unknown status");
    }
    CHECK_STR(apikeys_status_str(APIKEYS_OK), "success");
    /* The enum constants are the documented numbers. */
    CHECK(APIKEYS_LOCKED == 200 && APIKEYS_PANIC == 900 && APIKEYS_BAD_HEADER == 105);
    CHECK(APIKEYS_OPEN_SHARED == 1 && APIKEYS_LIST_EXPIRED == 3 && APIKEYS_KEY_EXPIRED == 2);
}

static void test_store_open_arguments(char *big) {
    apikeys_store *store = (apikeys_store *)0x1; /* sentinel: must stay untouched */
    const char *path = scratch_path("args.redb");
    CHECK_STATUS(apikeys_store_open(path, strlen(path), NULL, 0, 0, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_SET();
    CHECK_STATUS(apikeys_store_open(NULL, 10, NULL, 0, 0, &store), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_store_open(path, strlen(path), NULL, 4, 0, &store), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_store_open(NULL, 0, NULL, 0, 0, &store), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_store_open("\xff\xfe.redb", 7, NULL, 0, 0, &store),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_store_open("a\0b.redb", 8, NULL, 0, 0, &store), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_store_open(path, strlen(path), NULL, 0, 4, &store),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_store_open(path, strlen(path), NULL, 0, 0x80000001u, &store),
                 APIKEYS_INVALID_ARGUMENT);
    /* A 1 MiB path: the operating system refuses the name. */
    memset(big, 'p', MIB);
    CHECK_STATUS(apikeys_store_open(big, MIB, NULL, 0, 0, &store), APIKEYS_IO);
    CHECK_LAST_ERROR_SET();
    const char *missing = scratch_path("no/such/dir/keys.redb");
    CHECK_STATUS(apikeys_store_open(missing, strlen(missing), NULL, 0, 0, &store), APIKEYS_IO);
    CHECK(store == (apikeys_store *)0x1);
    CHECK_STATUS(apikeys_store_flush(NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_store_close(NULL), APIKEYS_OK);
}

/* In memory: two shared handles of one path share a store, nothing is
 * written at the path, and the last close drops the store. */
static void test_in_memory(void) {
    const uint32_t flags = APIKEYS_OPEN_SHARED | APIKEYS_OPEN_IN_MEMORY;
    apikeys_store *first = open_store("memory.redb", NULL, flags);
    apikeys_store *second = open_store("memory.redb", NULL, flags);
    char secret[64];
    apikeys_key *key = generate(first, "in memory", NULL, NULL, secret);
    CHECK_STATUS(apikeys_key_verify(second, secret, strlen(secret), NULL, 0, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_revoke(second, key_id(key), strlen(key_id(key)), NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(first, secret, strlen(secret), NULL, 0, NULL), APIKEYS_REVOKED);
    CHECK_STATUS(apikeys_key_free(key), APIKEYS_OK);
    CHECK(access(scratch_path("memory.redb"), F_OK) != 0);
    CHECK_STATUS(apikeys_store_close(first), APIKEYS_OK);
    CHECK_STATUS(apikeys_store_close(second), APIKEYS_OK);
    apikeys_store *fresh = open_store("memory.redb", NULL, APIKEYS_OPEN_IN_MEMORY);
    CHECK_STATUS(apikeys_key_verify(fresh, secret, strlen(secret), NULL, 0, NULL),
                 APIKEYS_NOT_FOUND);
    CHECK_STATUS(apikeys_store_close(fresh), APIKEYS_OK);
}

static void test_pepper_and_corruption(void) {
    apikeys_store *store = open_store("pepper.redb", "first pepper", 0);
    char secret[64];
    apikeys_key *key = generate(store, "Peppered", NULL, NULL, secret);
    apikeys_key_free(key);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);

    const char *path = scratch_path("pepper.redb");
    apikeys_store *other = (apikeys_store *)0x1;
    CHECK_STATUS(apikeys_store_open(path, strlen(path), (const uint8_t *)"other pepper", 12, 0,
                                    &other),
                 APIKEYS_WRONG_PEPPER);
    CHECK_LAST_ERROR_SET();
    CHECK(other == (apikeys_store *)0x1);
    CHECK_STATUS(apikeys_store_open(path, strlen(path), NULL, 0, 0, &other), APIKEYS_WRONG_PEPPER);
    /* A pepper may hold any bytes, NULs included. */
    apikeys_store *binary = NULL;
    const char *binary_path = scratch_path("binary-pepper.redb");
    CHECK_STATUS(apikeys_store_open(binary_path, strlen(binary_path), (const uint8_t *)"a\0\xff", 3,
                                    0, &binary),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_store_close(binary), APIKEYS_OK);
    CHECK_STATUS(apikeys_store_open(binary_path, strlen(binary_path), (const uint8_t *)"a\0\xfe", 3,
                                    0, &binary),
                 APIKEYS_WRONG_PEPPER);

    /* The right pepper still opens it, and the key still verifies. */
    store = open_store("pepper.redb", "first pepper", 0);
    CHECK_STATUS(apikeys_key_verify(store, secret, strlen(secret), NULL, 0, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);

    /* A file that is not a store. */
    const char *junk = scratch_path("junk.redb");
    FILE *file = fopen(junk, "wb");
    CHECK(file != NULL);
    if (file) {
        for (int i = 0; i < 65536; i++) {
            fputc((i * 7919) & 0xff, file);
        }
        fclose(file);
    }
    apikeys_store *corrupt = (apikeys_store *)0x1;
    CHECK_STATUS(apikeys_store_open(junk, strlen(junk), NULL, 0, 0, &corrupt), APIKEYS_CORRUPTED);
    CHECK_LAST_ERROR_SET();
    CHECK(corrupt == (apikeys_store *)0x1);
}

static void test_generate(apikeys_store *store, char *big) {
    apikeys_key *key = (apikeys_key *)0x1;
    /* Refused arguments: nothing generated, out untouched. */
    CHECK_STATUS(apikeys_key_generate(NULL, "n", 1, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 0, NULL, 0, NULL, 0, 0, NULL),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, NULL, 3, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 2, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "  ", 2, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "bad \xc3\x28", 6, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_SET();
    CHECK_STATUS(apikeys_key_generate(store, "nul\0name", 8, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    memset(big, 'n', MIB);
    CHECK_STATUS(apikeys_key_generate(store, big, MIB, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, "PROD", 4, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, "toolongenv", 10, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 0, "contacts:re*d", 13, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 0, big, MIB, NULL, 0, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 0, NULL, 0, big, 129, 0, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 0, NULL, 0, NULL, 0, 1000, &key),
                 APIKEYS_INVALID_ARGUMENT); /* expiry in the past */
    CHECK_STATUS(apikeys_key_generate(store, "n", 1, NULL, 0, NULL, 0, NULL, 0, -5, &key),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK(key == (apikeys_key *)0x1);
    apikeys_list *list = NULL;
    size_t count = 99;
    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_ALL, 0, &list), APIKEYS_OK);
    CHECK_STATUS(apikeys_list_len(list, &count), APIKEYS_OK);
    CHECK(count == 0); /* no refused call generated anything */
    apikeys_list_free(list);

    /* Every field. Optional strings given as non-NULL pointers with length 0 are absent. */
    const int64_t expiry = 4102444800; /* 2100-01-01 */
    CHECK_STATUS(apikeys_key_generate(store, "Production", LEN("Production"), "prod", 4,
                                      " contacts:* billing:read  contacts:*", 36, "acct-42", 7,
                                      expiry, &key),
                 APIKEYS_OK);
    const char *secret = NULL;
    size_t secret_len = 0;
    CHECK_STATUS(apikeys_key_secret(key, &secret, &secret_len), APIKEYS_OK);
    CHECK(secret_len == strlen("flz_sk_prod_") + 32 && strlen(secret) == secret_len);
    CHECK(strncmp(secret, "flz_sk_prod_", 12) == 0);
    CHECK_STATUS(apikeys_is_well_formed(secret, secret_len), APIKEYS_OK);
    const char *again = NULL;
    CHECK_STATUS(apikeys_key_secret(key, &again, NULL), APIKEYS_OK); /* out_len optional */
    CHECK(again == secret);
    const struct apikeys_key_info *info = NULL;
    CHECK_STATUS(apikeys_key_info(key, &info), APIKEYS_OK);
    CHECK(info != NULL);
    if (info) {
        CHECK(strlen(info->id) == 16);
        CHECK_STR(info->name, "Production");
        CHECK(strncmp(info->hint, secret, 16) == 0 && strstr(info->hint, "\xe2\x80\xa6") != NULL);
        CHECK(strlen(info->hint) < secret_len); /* the hint is not the key */
        CHECK_STR(info->env, "prod");
        CHECK_STR(info->scopes, "contacts:* billing:read"); /* duplicates dropped */
        CHECK_STR(info->owner, "acct-42");
        CHECK(info->rotated_from == NULL && info->rotated_to == NULL);
        CHECK(info->created_at > 1700000000);
        CHECK(info->expires_at == expiry && info->revoked_at == 0 && info->last_used == 0);
        CHECK(info->use_count == 0 && info->rejected_count == 0);
        CHECK(info->status == APIKEYS_KEY_ACTIVE);
    }
    CHECK_STATUS(apikeys_key_secret(NULL, &secret, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_secret(key, NULL, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_info(NULL, &info), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_info(key, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_free(key), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_free(NULL), APIKEYS_OK);

    /* Minimal: no env, no scope; "" and (NULL, 0) are both absent. */
    CHECK_STATUS(apikeys_key_generate(store, "Minimal", 7, "", 0, NULL, 0, "", 0, 0, &key),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_key_info(key, &info), APIKEYS_OK);
    if (info) {
        CHECK(info->env == NULL && info->owner == NULL && info->expires_at == 0);
        CHECK_STR(info->scopes, "");
        CHECK(strncmp(info->hint, "flz_sk_", 7) == 0);
    }
    apikeys_key_free(key);
}

static void test_well_formed(char *big) {
    apikeys_store *store = open_store("wellformed.redb", NULL, 0);
    char secret[64];
    apikeys_key *key = generate(store, "k", "dev", NULL, secret);
    size_t len = strlen(secret);
    CHECK_STATUS(apikeys_is_well_formed(secret, len), APIKEYS_OK);
    CHECK_STATUS(apikeys_is_well_formed(secret, len - 1), APIKEYS_MALFORMED); /* truncated */
    char typo[64];
    memcpy(typo, secret, len + 1);
    typo[len - 10] = typo[len - 10] == 'a' ? 'b' : 'a'; /* the checksum catches it */
    CHECK_STATUS(apikeys_is_well_formed(typo, len), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_is_well_formed(NULL, 0), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_is_well_formed(NULL, 5), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_is_well_formed("flz_sk_\xff\xfe", 9), APIKEYS_MALFORMED);
    char with_nul[64];
    memcpy(with_nul, secret, len + 1);
    with_nul[5] = '\0';
    CHECK_STATUS(apikeys_is_well_formed(with_nul, len), APIKEYS_MALFORMED);
    memset(big, 'k', MIB);
    CHECK_STATUS(apikeys_is_well_formed(big, MIB), APIKEYS_MALFORMED);
    /* Multi-byte characters of a key's length (a byte-index split once panicked on this). */
    const char *accented = "ab\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" "c";
    CHECK_STATUS(apikeys_is_well_formed(accented, strlen(accented)), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_verify(store, accented, strlen(accented), NULL, 0, NULL),
                 APIKEYS_MALFORMED);
    apikeys_key_free(key);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
}

static void test_verify(apikeys_store *store, char *big) {
    char secret[64];
    apikeys_key *key = generate(store, "Reader", "prod", "contacts:* billing:read", secret);
    size_t len = strlen(secret);

    apikeys_verified *verified = NULL;
    CHECK_STATUS(apikeys_key_verify(store, secret, len, NULL, 0, &verified), APIKEYS_OK);
    const struct apikeys_verified_info *info = NULL;
    CHECK_STATUS(apikeys_verified_info(verified, &info), APIKEYS_OK);
    if (info) {
        CHECK_STR(info->id, key_id(key));
        CHECK_STR(info->name, "Reader");
        CHECK_STR(info->env, "prod");
        CHECK_STR(info->scopes, "contacts:* billing:read");
        CHECK(info->owner == NULL && info->expires_at == 0);
    }
    CHECK_STATUS(apikeys_verified_info(NULL, &info), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_verified_info(verified, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_verified_free(verified), APIKEYS_OK);
    CHECK_STATUS(apikeys_verified_free(NULL), APIKEYS_OK);

    /* Scopes: wildcard under a prefix, exact, and missing. */
    CHECK_STATUS(apikeys_key_verify(store, secret, len, "contacts:read", 13, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, secret, len, "billing:read", 12, NULL), APIKEYS_OK);
    verified = (apikeys_verified *)0x1;
    CHECK_STATUS(apikeys_key_verify(store, secret, len, "billing:write", 13, &verified),
                 APIKEYS_INSUFFICIENT_SCOPE);
    CHECK(verified == (apikeys_verified *)0x1);
    CHECK_LAST_ERROR_SET();
    CHECK_STATUS(apikeys_key_verify(store, secret, len, "\xff", 1, NULL), APIKEYS_INVALID_ARGUMENT);

    /* Not found: a well-formed key from another store. */
    apikeys_store *other = open_store("other.redb", NULL, 0);
    char foreign[64];
    apikeys_key *foreign_key = generate(other, "Elsewhere", NULL, NULL, foreign);
    CHECK_STATUS(apikeys_key_verify(store, foreign, strlen(foreign), NULL, 0, &verified),
                 APIKEYS_NOT_FOUND);
    CHECK(verified == (apikeys_verified *)0x1);
    apikeys_key_free(foreign_key);
    CHECK_STATUS(apikeys_store_close(other), APIKEYS_OK);

    /* Malformed, whatever the bytes. */
    CHECK_STATUS(apikeys_key_verify(store, secret, len - 1, NULL, 0, NULL), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_verify(store, "flz_sk_\xc3\x28", 9, NULL, 0, NULL), APIKEYS_MALFORMED);
    char with_nul[64];
    memcpy(with_nul, secret, len + 1);
    with_nul[len - 1] = '\0';
    CHECK_STATUS(apikeys_key_verify(store, with_nul, len, NULL, 0, NULL), APIKEYS_MALFORMED);
    memset(big, 'v', MIB);
    CHECK_STATUS(apikeys_key_verify(store, big, MIB, NULL, 0, NULL), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_verify(store, NULL, 0, NULL, 0, NULL), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_verify(store, NULL, len, NULL, 0, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_verify(NULL, secret, len, NULL, 0, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_verify(store, secret, len, NULL, 3, NULL), APIKEYS_NULL_ARGUMENT);

    /* Usage is counted and visible in the list before any flush. */
    CHECK_STATUS(apikeys_store_flush(store), APIKEYS_OK);
    struct listed_usage usage = listed_usage(store, key);
    CHECK(usage.seen);
    /* Four presentations of a valid key above: the one lacking a scope is
     * still a use of the key (the core counts it). */
    CHECK(usage.use_count == 4);
    CHECK(usage.last_used >= usage.created_at);
    apikeys_key_free(key);
}

/* apikeys_key_check: NUL-terminated key and scope, status only, the id on request. */
static void test_key_check(apikeys_store *store, char *big) {
    char secret[64];
    apikeys_key *key = generate(store, "Checked", "prod", "contacts:* billing:read", secret);
    size_t len = strlen(secret);
    char id[APIKEYS_ID_SIZE];

    memset(id, 'x', sizeof id);
    CHECK_STATUS(apikeys_key_check(store, secret, NULL, id), APIKEYS_OK);
    CHECK_STR(id, key_id(key));
    CHECK(strlen(id) == APIKEYS_ID_SIZE - 1);
    CHECK_STATUS(apikeys_key_check(store, secret, NULL, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_check(store, secret, "", NULL), APIKEYS_OK); /* "" = no scope */
    CHECK_STATUS(apikeys_key_check(store, secret, "contacts:read", id), APIKEYS_OK);
    CHECK_STR(id, key_id(key));

    /* Refusals leave the id buffer untouched and set the last error. */
    memset(id, 'x', sizeof id);
    CHECK_STATUS(apikeys_key_check(store, secret, "billing:write", id), APIKEYS_INSUFFICIENT_SCOPE);
    CHECK(id[0] == 'x' && id[APIKEYS_ID_SIZE - 1] == 'x');
    CHECK_LAST_ERROR_SET();
    CHECK_STATUS(apikeys_key_check(store, secret, "\xff", id), APIKEYS_INVALID_ARGUMENT);
    apikeys_store *other = open_store("other-check.redb", NULL, 0);
    char foreign[64];
    apikeys_key *foreign_key = generate(other, "Elsewhere", NULL, NULL, foreign);
    CHECK_STATUS(apikeys_key_check(store, foreign, NULL, id), APIKEYS_NOT_FOUND);
    CHECK(id[0] == 'x');
    apikeys_key_free(foreign_key);
    CHECK_STATUS(apikeys_store_close(other), APIKEYS_OK);

    /* Malformed, whatever the bytes: truncated, not UTF-8, empty, cut by a NUL. */
    char cut[64];
    memcpy(cut, secret, len + 1);
    cut[len - 1] = '\0';
    CHECK_STATUS(apikeys_key_check(store, cut, NULL, id), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_check(store, "flz_sk_\xc3\x28", NULL, NULL), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_check(store, "", NULL, NULL), APIKEYS_MALFORMED);
    CHECK(id[0] == 'x');
    /* No NUL: read up to APIKEYS_KEY_SCAN_MAX bytes and no further (ASan
     * checks the heap block ends there), then MALFORMED. */
    char *unterminated = malloc(APIKEYS_KEY_SCAN_MAX);
    CHECK(unterminated != NULL);
    if (unterminated) {
        memset(unterminated, 'k', APIKEYS_KEY_SCAN_MAX);
        memcpy(unterminated, secret, len); /* a valid key, then no terminator */
        CHECK_STATUS(apikeys_key_check(store, unterminated, NULL, NULL), APIKEYS_MALFORMED);
        free(unterminated);
    }
    memset(big, 'v', MIB - 1);
    big[MIB - 1] = '\0';
    CHECK_STATUS(apikeys_key_check(store, big, NULL, NULL), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_check(store, NULL, NULL, id), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_check(NULL, secret, NULL, id), APIKEYS_NULL_ARGUMENT);
    CHECK(id[0] == 'x');

    /* Same answers as apikeys_key_verify, revoked and expired included. */
    char revoked[64];
    apikeys_key *revoked_key = generate(store, "Check revoked", NULL, NULL, revoked);
    const char *revoked_id = key_id(revoked_key);
    CHECK_STATUS(apikeys_key_revoke(store, revoked_id, strlen(revoked_id), NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_check(store, revoked, NULL, id), APIKEYS_REVOKED);
    CHECK_STATUS(apikeys_key_verify(store, revoked, strlen(revoked), NULL, 0, NULL),
                 APIKEYS_REVOKED);
    apikeys_key_free(revoked_key);

    /* Counted as verify counts: four accepted, one lacking a scope. */
    struct listed_usage usage = listed_usage(store, key);
    CHECK(usage.seen);
    CHECK(usage.use_count == 5);
    apikeys_key_free(key);
}

/* apikeys_key_validate: apikeys_key_check(store, key, NULL, NULL) in two
 * arguments: the same statuses for every presentation, the use counted. */
static void test_key_validate(apikeys_store *store, char *big) {
    char secret[64];
    apikeys_key *key = generate(store, "Validated", "prod", NULL, secret);
    size_t len = strlen(secret);
    CHECK_STATUS(apikeys_key_validate(store, secret), APIKEYS_OK);

    char revoked[64];
    apikeys_key *revoked_key = generate(store, "Validate revoked", NULL, NULL, revoked);
    const char *revoked_id = key_id(revoked_key);
    CHECK_STATUS(apikeys_key_revoke(store, revoked_id, strlen(revoked_id), NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_validate(store, revoked), APIKEYS_REVOKED);
    CHECK_LAST_ERROR_SET();

    /* Rotated with no grace: the old key expires at once. */
    char expired[64];
    apikeys_key *expired_key = generate(store, "Validate expired", NULL, NULL, expired);
    const char *expired_id = key_id(expired_key);
    apikeys_key *successor = NULL;
    CHECK_STATUS(apikeys_key_rotate(store, expired_id, strlen(expired_id), 0, &successor),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_key_validate(store, expired), APIKEYS_EXPIRED);

    apikeys_store *other = open_store("other-validate.redb", NULL, 0);
    char foreign[64];
    apikeys_key *foreign_key = generate(other, "Elsewhere", NULL, NULL, foreign);
    CHECK_STATUS(apikeys_key_validate(store, foreign), APIKEYS_NOT_FOUND);
    apikeys_key_free(foreign_key);
    CHECK_STATUS(apikeys_store_close(other), APIKEYS_OK);

    /* Malformed, whatever the bytes: truncated, not UTF-8, empty, huge. */
    char cut[64];
    memcpy(cut, secret, len + 1);
    cut[len - 1] = '\0';
    CHECK_STATUS(apikeys_key_validate(store, cut), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_validate(store, "flz_sk_\xc3\x28"), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_key_validate(store, ""), APIKEYS_MALFORMED);
    memset(big, 'v', MIB - 1);
    big[MIB - 1] = '\0';
    CHECK_STATUS(apikeys_key_validate(store, big), APIKEYS_MALFORMED);
    /* No NUL: read up to APIKEYS_KEY_SCAN_MAX bytes and no further (ASan
     * checks the heap block ends there). */
    char *unterminated = malloc(APIKEYS_KEY_SCAN_MAX);
    CHECK(unterminated != NULL);
    if (unterminated) {
        memset(unterminated, 'k', APIKEYS_KEY_SCAN_MAX);
        memcpy(unterminated, secret, len);
        CHECK_STATUS(apikeys_key_validate(store, unterminated), APIKEYS_MALFORMED);
        free(unterminated);
    }
    CHECK_STATUS(apikeys_key_validate(store, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_validate(NULL, secret), APIKEYS_NULL_ARGUMENT);

    /* The answers of apikeys_key_check, presentation by presentation. */
    const char *presented[] = {secret, revoked, expired, foreign, cut, "", "flz_sk_\xc3\x28", big};
    for (size_t i = 0; i < sizeof presented / sizeof presented[0]; i++) {
        CHECK(apikeys_key_validate(store, presented[i]) ==
              apikeys_key_check(store, presented[i], NULL, NULL));
    }

    /* Counted as verify counts: the key was accepted three times above. */
    struct listed_usage usage = listed_usage(store, key);
    CHECK(usage.seen);
    CHECK(usage.use_count == 3);
    apikeys_key_free(successor);
    apikeys_key_free(expired_key);
    apikeys_key_free(revoked_key);
    apikeys_key_free(key);
}

static void test_header_verify(apikeys_store *store, char *big) {
    char secret[64];
    apikeys_key *key = generate(store, "Header", NULL, "contacts:read", secret);
    char header[128];
    const char *ok_forms[] = {"Bearer %s", "bearer  %s", "  BEARER %s\t"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(header, sizeof header, ok_forms[i], secret);
        CHECK_STATUS(apikeys_header_verify(store, header, strlen(header), NULL, 0, NULL),
                     APIKEYS_OK);
    }
    snprintf(header, sizeof header, "Bearer %s", secret);
    apikeys_verified *verified = NULL;
    CHECK_STATUS(apikeys_header_verify(store, header, strlen(header), "contacts:read", 13,
                                       &verified),
                 APIKEYS_OK);
    const struct apikeys_verified_info *info = NULL;
    CHECK_STATUS(apikeys_verified_info(verified, &info), APIKEYS_OK);
    if (info) {
        CHECK_STR(info->name, "Header");
    }
    apikeys_verified_free(verified);
    CHECK_STATUS(apikeys_header_verify(store, header, strlen(header), "contacts:write", 14, NULL),
                 APIKEYS_INSUFFICIENT_SCOPE);

    const char *bad[] = {"", "   ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer ===",
                         "Bearerabc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(apikeys_header_verify(store, bad[i], strlen(bad[i]), NULL, 0, NULL),
                     APIKEYS_BAD_HEADER);
    }
    CHECK_STATUS(apikeys_header_verify(store, NULL, 0, NULL, 0, NULL), APIKEYS_BAD_HEADER);
    CHECK_STATUS(apikeys_header_verify(store, "Bearer \xff\xfe", 9, NULL, 0, NULL),
                 APIKEYS_BAD_HEADER);
    CHECK_STATUS(apikeys_header_verify(store, "Bearer flz_sk_nope", 18, NULL, 0, NULL),
                 APIKEYS_MALFORMED);
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'h', MIB - 7);
    CHECK_STATUS(apikeys_header_verify(store, big, MIB, NULL, 0, NULL), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_header_verify(NULL, header, strlen(header), NULL, 0, NULL),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_header_verify(store, NULL, 4, NULL, 0, NULL), APIKEYS_NULL_ARGUMENT);
    apikeys_key_free(key);
}

/* apikeys_header_check: the header read as apikeys_header_verify reads it,
 * NUL-terminated, the id written on success only; answers equal to
 * apikeys_header_verify's for the same header and scope. */
static void test_header_check(apikeys_store *store, char *big) {
    char secret[64];
    apikeys_key *key = generate(store, "Header check", NULL, "contacts:*", secret);
    char header[128];
    char id[APIKEYS_ID_SIZE];
    const char *ok_forms[] = {"Bearer %s", "bearer  %s", "  BEARER %s\t"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(header, sizeof header, ok_forms[i], secret);
        memset(id, 'x', sizeof id);
        CHECK_STATUS(apikeys_header_check(store, header, NULL, id), APIKEYS_OK);
        CHECK_STR(id, key_id(key));
    }
    snprintf(header, sizeof header, "Bearer %s", secret);
    CHECK_STATUS(apikeys_header_check(store, header, "contacts:read", NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_header_check(store, header, "", NULL), APIKEYS_OK); /* "" = no scope */

    /* Refusals: id untouched, the same status as apikeys_header_verify. */
    memset(id, 'x', sizeof id);
    CHECK_STATUS(apikeys_header_check(store, header, "billing:read", id), APIKEYS_INSUFFICIENT_SCOPE);
    CHECK_LAST_ERROR_SET();
    const char *bad[] = {"", "   ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer ===",
                         "Bearerabc", "Bearer \xff\xfe", "Bearer flz_sk_nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(apikeys_header_check(store, bad[i], NULL, id),
                     apikeys_header_verify(store, bad[i], strlen(bad[i]), NULL, 0, NULL));
    }
    CHECK_STATUS(apikeys_header_check(store, NULL, NULL, id), APIKEYS_BAD_HEADER); /* missing */
    CHECK_STATUS(apikeys_header_check(store, header, "\xff", id), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_header_check(NULL, header, NULL, id), APIKEYS_NULL_ARGUMENT);
    /* The value ends at its NUL: a valid header, then a NUL, then junk. */
    char cut[160];
    int len = snprintf(cut, sizeof cut, "%s", header);
    memcpy(cut + len + 1, " junk", 6);
    CHECK_STATUS(apikeys_header_check(store, cut, NULL, NULL), APIKEYS_OK);
    for (size_t i = 0; i < sizeof id; i++) {
        CHECK(id[i] == 'x');
    }

    /* The scan bound: blanks, then the key, ending just inside the bound
     * (accepted) or just past it with no NUL (BAD_HEADER, nothing read
     * beyond: ASan checks the heap block ends there). */
    size_t key_len = strlen(secret);
    char *padded = malloc(APIKEYS_HEADER_SCAN_MAX);
    CHECK(padded != NULL);
    if (padded) {
        memset(padded, ' ', APIKEYS_HEADER_SCAN_MAX);
        memcpy(padded, "Bearer", 6);
        memcpy(padded + APIKEYS_HEADER_SCAN_MAX - 1 - key_len, secret, key_len);
        padded[APIKEYS_HEADER_SCAN_MAX - 1] = '\0';
        CHECK_STATUS(apikeys_header_check(store, padded, NULL, NULL), APIKEYS_OK);
        memmove(padded + APIKEYS_HEADER_SCAN_MAX - key_len, padded + APIKEYS_HEADER_SCAN_MAX - 1 - key_len,
                key_len);
        padded[APIKEYS_HEADER_SCAN_MAX - 1 - key_len] = ' ';
        CHECK_STATUS(apikeys_header_check(store, padded, NULL, NULL), APIKEYS_BAD_HEADER);
        free(padded);
    }
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'h', MIB - 8);
    big[MIB - 1] = '\0';
    CHECK_STATUS(apikeys_header_check(store, big, NULL, NULL), APIKEYS_BAD_HEADER);

    /* Counted as verify counts: 3 + 2 + 1 + 1 accepted or lacking a scope. */
    struct listed_usage usage = listed_usage(store, key);
    CHECK(usage.seen);
    CHECK(usage.use_count == 8);
    apikeys_key_free(key);
}

static void test_revoke(apikeys_store *store) {
    char secret[64];
    apikeys_key *key = generate(store, "To revoke", NULL, NULL, secret);
    const char *id = key_id(key);
    bool newly = false;
    CHECK_STATUS(apikeys_key_revoke(store, id, strlen(id), &newly), APIKEYS_OK);
    CHECK(newly == true);
    CHECK_STATUS(apikeys_key_revoke(store, id, strlen(id), &newly), APIKEYS_OK);
    CHECK(newly == false); /* idempotent */
    CHECK_STATUS(apikeys_key_revoke(store, id, strlen(id), NULL), APIKEYS_OK);
    apikeys_verified *verified = (apikeys_verified *)0x1;
    CHECK_STATUS(apikeys_key_verify(store, secret, strlen(secret), NULL, 0, &verified),
                 APIKEYS_REVOKED);
    CHECK(verified == (apikeys_verified *)0x1);
    CHECK_STATUS(apikeys_key_revoke(store, "0000000000000000", 16, &newly), APIKEYS_UNKNOWN_KEY);
    CHECK_LAST_ERROR_SET();
    CHECK_STATUS(apikeys_key_revoke(store, "\xff\xff", 2, &newly), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_revoke(NULL, id, strlen(id), &newly), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_revoke(store, NULL, 16, &newly), APIKEYS_NULL_ARGUMENT);

    /* By the leaked secret. */
    char leaked[64];
    apikeys_key *leaked_key = generate(store, "Leaked", "prod", NULL, leaked);
    newly = false;
    CHECK_STATUS(apikeys_key_revoke_secret(store, leaked, strlen(leaked), &newly), APIKEYS_OK);
    CHECK(newly == true);
    CHECK_STATUS(apikeys_key_revoke_secret(store, leaked, strlen(leaked), &newly), APIKEYS_OK);
    CHECK(newly == false);
    CHECK_STATUS(apikeys_key_verify(store, leaked, strlen(leaked), NULL, 0, NULL), APIKEYS_REVOKED);
    CHECK_STATUS(apikeys_key_revoke_secret(store, "flz_sk_garbage", 14, NULL),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_revoke_secret(store, "\xc3\x28", 2, NULL), APIKEYS_INVALID_ARGUMENT);
    apikeys_store *other = open_store("other2.redb", NULL, 0);
    char foreign[64];
    apikeys_key *foreign_key = generate(other, "Elsewhere", NULL, NULL, foreign);
    CHECK_STATUS(apikeys_key_revoke_secret(store, foreign, strlen(foreign), NULL),
                 APIKEYS_UNKNOWN_KEY);
    apikeys_key_free(foreign_key);
    CHECK_STATUS(apikeys_store_close(other), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_revoke_secret(NULL, leaked, strlen(leaked), NULL),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_revoke_secret(store, NULL, 3, NULL), APIKEYS_NULL_ARGUMENT);
    apikeys_key_free(leaked_key);
    apikeys_key_free(key);
}

static void test_rotate(apikeys_store *store) {
    char old_secret[64];
    apikeys_key *old = generate(store, "Rotating", "stag", "contacts:read", old_secret);
    const char *old_id = key_id(old);

    apikeys_key *successor = (apikeys_key *)0x1;
    CHECK_STATUS(apikeys_key_rotate(store, old_id, strlen(old_id), 3600, NULL),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_rotate(NULL, old_id, strlen(old_id), 3600, &successor),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_rotate(store, "nope", 4, 3600, &successor), APIKEYS_UNKNOWN_KEY);
    CHECK_STATUS(apikeys_key_rotate(store, "\xff", 1, 3600, &successor), APIKEYS_INVALID_ARGUMENT);
    CHECK(successor == (apikeys_key *)0x1);

    /* With a grace period both keys work. */
    CHECK_STATUS(apikeys_key_rotate(store, old_id, strlen(old_id), 3600, &successor), APIKEYS_OK);
    const struct apikeys_key_info *info = NULL;
    CHECK_STATUS(apikeys_key_info(successor, &info), APIKEYS_OK);
    const char *new_secret = NULL;
    size_t new_len = 0;
    CHECK_STATUS(apikeys_key_secret(successor, &new_secret, &new_len), APIKEYS_OK);
    if (info) {
        CHECK_STR(info->rotated_from, old_id);
        CHECK_STR(info->name, "Rotating");
        CHECK_STR(info->env, "stag");
        CHECK_STR(info->scopes, "contacts:read");
        CHECK(strcmp(info->id, old_id) != 0);
    }
    CHECK(strncmp(new_secret, "flz_sk_stag_", 12) == 0);
    CHECK_STATUS(apikeys_key_verify(store, new_secret, new_len, NULL, 0, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, old_secret, strlen(old_secret), NULL, 0, NULL),
                 APIKEYS_OK);

    /* Grace 0: the old key (here the first successor) expires at once. */
    char first_successor_secret[64];
    memcpy(first_successor_secret, new_secret, new_len + 1);
    apikeys_key *third = NULL;
    const char *successor_id = info ? info->id : "";
    CHECK_STATUS(apikeys_key_rotate(store, successor_id, strlen(successor_id), 0, &third),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, first_successor_secret, new_len, NULL, 0, NULL),
                 APIKEYS_EXPIRED);
    CHECK_LAST_ERROR_SET();
    /* An expired key cannot be rotated again. */
    apikeys_key *refused = (apikeys_key *)0x1;
    CHECK_STATUS(apikeys_key_rotate(store, successor_id, strlen(successor_id), 0, &refused),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK(refused == (apikeys_key *)0x1);
    apikeys_key_free(third);
    apikeys_key_free(successor);
    apikeys_key_free(old);
}

/* Counts the keys a list call returns, checking each has the wanted status. */
static size_t list_count(apikeys_store *store, uint32_t filter, int64_t unused_since,
                         int wanted_status) {
    apikeys_list *list = NULL;
    CHECK_STATUS(apikeys_key_list(store, filter, unused_since, &list), APIKEYS_OK);
    size_t count = 0;
    CHECK_STATUS(apikeys_list_len(list, &count), APIKEYS_OK);
    int64_t previous = 0;
    for (size_t i = 0; i < count; i++) {
        const struct apikeys_key_info *info = NULL;
        CHECK_STATUS(apikeys_list_get(list, i, &info), APIKEYS_OK);
        if (info) {
            if (wanted_status >= 0) {
                CHECK(info->status == (uint32_t)wanted_status);
            }
            CHECK(info->created_at >= previous); /* oldest first */
            previous = info->created_at;
        }
    }
    CHECK_STATUS(apikeys_list_free(list), APIKEYS_OK);
    return count;
}

static void test_list(void) {
    apikeys_store *store = open_store("list.redb", NULL, 0);
    char secrets[4][64];
    apikeys_key *active = generate(store, "Active", NULL, NULL, secrets[0]);
    apikeys_key *used = generate(store, "Used", NULL, NULL, secrets[1]);
    apikeys_key *revoked = generate(store, "Revoked", NULL, NULL, secrets[2]);
    apikeys_key *expiring = generate(store, "Expiring", NULL, NULL, secrets[3]);
    const char *revoked_id = key_id(revoked);
    CHECK_STATUS(apikeys_key_revoke(store, revoked_id, strlen(revoked_id), NULL), APIKEYS_OK);
    const char *expiring_id = key_id(expiring);
    apikeys_key *rotated = NULL;
    CHECK_STATUS(apikeys_key_rotate(store, expiring_id, strlen(expiring_id), 0, &rotated),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, secrets[1], strlen(secrets[1]), NULL, 0, NULL),
                 APIKEYS_OK);
    /* Two presentations of a revoked key: suspicious uses. */
    CHECK_STATUS(apikeys_key_verify(store, secrets[2], strlen(secrets[2]), NULL, 0, NULL),
                 APIKEYS_REVOKED);
    CHECK_STATUS(apikeys_key_verify(store, secrets[2], strlen(secrets[2]), NULL, 0, NULL),
                 APIKEYS_REVOKED);

    CHECK(list_count(store, APIKEYS_LIST_ALL, 0, -1) == 5);
    CHECK(list_count(store, APIKEYS_LIST_ACTIVE, 0, APIKEYS_KEY_ACTIVE) == 3);
    CHECK(list_count(store, APIKEYS_LIST_REVOKED, 0, APIKEYS_KEY_REVOKED) == 1);
    CHECK(list_count(store, APIKEYS_LIST_EXPIRED, 0, APIKEYS_KEY_EXPIRED) == 1);
    /* Unused since long ago: none (all were created after). Unused since far
     * ahead: all, used or not. */
    CHECK(list_count(store, APIKEYS_LIST_ALL, 1, -1) == 0);
    CHECK(list_count(store, APIKEYS_LIST_ALL, 4102444800, -1) == 5);

    apikeys_list *list = (apikeys_list *)0x1;
    CHECK_STATUS(apikeys_key_list(store, 4, 0, &list), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_key_list(store, UINT32_MAX, 0, &list), APIKEYS_INVALID_ARGUMENT);
    CHECK(list == (apikeys_list *)0x1);
    CHECK_STATUS(apikeys_key_list(NULL, 0, 0, &list), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_key_list(store, 0, 0, NULL), APIKEYS_NULL_ARGUMENT);

    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_REVOKED, 0, &list), APIKEYS_OK);
    const struct apikeys_key_info *info = (const struct apikeys_key_info *)0x1;
    CHECK_STATUS(apikeys_list_get(list, 1, &info), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_list_get(list, SIZE_MAX, &info), APIKEYS_INVALID_ARGUMENT);
    CHECK(info == (const struct apikeys_key_info *)0x1);
    CHECK_STATUS(apikeys_list_get(list, 0, &info), APIKEYS_OK);
    CHECK_STR(info->id, revoked_id);
    CHECK(info->revoked_at >= info->created_at && info->revoked_at > 0);
    CHECK(info->rejected_count == 2 && info->use_count == 0);
    CHECK_STATUS(apikeys_list_get(NULL, 0, &info), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_list_get(list, 0, NULL), APIKEYS_NULL_ARGUMENT);
    size_t len = 0;
    CHECK_STATUS(apikeys_list_len(NULL, &len), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_list_len(list, NULL), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_list_free(list), APIKEYS_OK);
    CHECK_STATUS(apikeys_list_free(NULL), APIKEYS_OK);

    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_EXPIRED, 0, &list), APIKEYS_OK);
    CHECK_STATUS(apikeys_list_get(list, 0, &info), APIKEYS_OK);
    CHECK_STR(info->id, expiring_id);
    const struct apikeys_key_info *rotated_info = NULL;
    CHECK_STATUS(apikeys_key_info(rotated, &rotated_info), APIKEYS_OK);
    CHECK_STR(info->rotated_to, rotated_info->id);
    CHECK(info->expires_at > 0);
    apikeys_list_free(list);

    /* Everything survives closing and reopening. */
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    store = open_store("list.redb", NULL, 0);
    CHECK_STATUS(apikeys_key_verify(store, secrets[0], strlen(secrets[0]), NULL, 0, NULL),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, secrets[2], strlen(secrets[2]), NULL, 0, NULL),
                 APIKEYS_REVOKED);
    CHECK_STATUS(apikeys_key_verify(store, secrets[3], strlen(secrets[3]), NULL, 0, NULL),
                 APIKEYS_EXPIRED);
    CHECK(list_count(store, APIKEYS_LIST_ALL, 0, -1) == 5);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    apikeys_key_free(active);
    apikeys_key_free(used);
    apikeys_key_free(revoked);
    apikeys_key_free(expiring);
    apikeys_key_free(rotated);
}

static void test_status_http(void) {
    const char *unauthorized =
        "{\"success\":false,\"error\":{\"code\":\"UNAUTHORIZED\",\"message\":\"Invalid or missing "
        "API key\"}}";
    const char *forbidden = "{\"success\":false,\"error\":{\"code\":\"FORBIDDEN\",\"message\":"
                            "\"API key does not have the required permissions\"}}";
    const uint32_t to_401[] = {APIKEYS_MALFORMED, APIKEYS_NOT_FOUND, APIKEYS_REVOKED,
                               APIKEYS_EXPIRED, APIKEYS_BAD_HEADER};
    uint16_t code = 0;
    const char *body = NULL;
    for (size_t i = 0; i < sizeof to_401 / sizeof to_401[0]; i++) {
        CHECK_STATUS(apikeys_status_http(to_401[i], &code, &body), APIKEYS_OK);
        CHECK(code == 401);
        CHECK_STR(body, unauthorized);
    }
    CHECK_STATUS(apikeys_status_http(APIKEYS_INSUFFICIENT_SCOPE, &code, &body), APIKEYS_OK);
    CHECK(code == 403);
    CHECK_STR(body, forbidden);
    const uint32_t to_500[] = {APIKEYS_NULL_ARGUMENT, APIKEYS_INVALID_ARGUMENT, APIKEYS_LOCKED,
                               APIKEYS_CORRUPTED, APIKEYS_USED_AFTER_FORK, APIKEYS_IO,
                               APIKEYS_PANIC, 12345};
    for (size_t i = 0; i < sizeof to_500 / sizeof to_500[0]; i++) {
        CHECK_STATUS(apikeys_status_http(to_500[i], &code, &body), APIKEYS_OK);
        CHECK(code == 500);
        CHECK(strstr(body, "\"INTERNAL_ERROR\"") != NULL);
    }
    code = 7;
    body = NULL;
    CHECK_STATUS(apikeys_status_http(APIKEYS_OK, &code, &body), APIKEYS_INVALID_ARGUMENT);
    CHECK(code == 7 && body == NULL);
    CHECK_STATUS(apikeys_status_http(APIKEYS_REVOKED, NULL, &body), APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_status_http(APIKEYS_REVOKED, &code, NULL), APIKEYS_NULL_ARGUMENT);
}

struct thread_job {
    apikeys_store *store;
    const char *secret;
    int accepted;
    int error_was_private;
};

static void *verify_many(void *arg) {
    struct thread_job *job = arg;
    /* A fresh thread has no last error, whatever other threads did. */
    job->error_was_private = apikeys_last_error()[0] == '\0';
    char id[APIKEYS_ID_SIZE]; /* one buffer per thread */
    for (int i = 0; i < 2000; i++) {
        /* The three verify entry points, in turn. */
        apikeys_status status =
            i % 3 == 0   ? apikeys_key_check(job->store, job->secret, NULL, id)
            : i % 3 == 1 ? apikeys_key_validate(job->store, job->secret)
                         : apikeys_key_verify(job->store, job->secret, strlen(job->secret), NULL, 0, NULL);
        if (status == APIKEYS_OK) {
            job->accepted++;
        }
    }
    return NULL;
}

static void test_threads(apikeys_store *store) {
    char secret[64];
    apikeys_key *key = generate(store, "Threads", NULL, NULL, secret);
    /* Leave a failure on this thread: other threads must not see it. */
    CHECK_STATUS(apikeys_key_verify(store, "x", 1, NULL, 0, NULL), APIKEYS_MALFORMED);
    pthread_t threads[4];
    struct thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){store, secret, 0, 0};
        CHECK(pthread_create(&threads[i], NULL, verify_many, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(jobs[i].accepted == 2000);
        CHECK(jobs[i].error_was_private);
    }
    CHECK_STR(apikeys_last_error(), "the key is not well-formed");
    apikeys_key_free(key);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
        return 2;
    }
    snprintf(scratch, sizeof scratch, "%s", argv[1]);
    char *big = malloc(MIB);
    if (big == NULL) {
        return 2;
    }
    test_static_strings();
    test_store_open_arguments(big);
    test_pepper_and_corruption();
    test_in_memory();
    test_well_formed(big);
    apikeys_store *store = open_store("main.redb", "pepper", 0);
    test_generate(store, big);
    test_verify(store, big);
    test_key_check(store, big);
    test_key_validate(store, big);
    test_header_verify(store, big);
    test_header_check(store, big);
    test_revoke(store);
    test_rotate(store);
    test_threads(store);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    test_list();
    test_status_http();
    free(big);
    return report("test_api");
}
