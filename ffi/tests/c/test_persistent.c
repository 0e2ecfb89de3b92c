/* Persistent handles (apikeys_store_open_persistent): the arguments are
 * checked as apikeys_store_open checks them and out is written only on
 * success; the same path, pepper and flags give back the same handle,
 * opened once; apikeys_store_close leaves it open; another pepper is
 * WRONG_PEPPER; a forked child never gets the parent's handle but opens its
 * own, and the parent's answers USED_AFTER_FORK there; a process that
 * exits normally has its usage flushed by the library's exit hook.
 *
 * The forked child reports its check counts through a pipe and leaves with
 * _exit(), as test_fork's do: LeakSanitizer cannot tell what a child of a
 * threaded process still reaches. The exit hook is tested in a fresh
 * process instead (this program run again, "exit-hook" mode), which
 * exits normally and whose handles the hook must have freed for
 * LeakSanitizer to pass it.
 *
 * Usage: test_persistent <empty scratch directory> */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

extern char **environ;
static char scratch[512];
static char *program;

static const char *scratch_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    return path;
}

static apikeys_status open_persistent(const char *name, const char *pepper, uint32_t flags,
                                      apikeys_store **out) {
    const char *path = scratch_path(name);
    return apikeys_store_open_persistent(path, strlen(path), pepper, pepper ? strlen(pepper) : 0,
                                         flags, out);
}

static uint64_t opens(void) {
    uint64_t count = 12345;
    CHECK_STATUS(apikeys_store_persistent_opens(&count), APIKEYS_OK);
    return count;
}

/* The use count of key `id` as a fresh (not persistent) shared handle reads
 * it from the file. */
static uint64_t use_count_in_file(const char *name, const char *pepper, const char *id) {
    const char *path = scratch_path(name);
    apikeys_store *store = NULL;
    CHECK_STATUS(apikeys_store_open(path, strlen(path), (const uint8_t *)pepper, strlen(pepper),
                                    APIKEYS_OPEN_SHARED, &store),
                 APIKEYS_OK);
    uint64_t count = UINT64_MAX;
    apikeys_list *list = NULL;
    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_ALL, 0, &list), APIKEYS_OK);
    size_t len = 0;
    CHECK_STATUS(apikeys_list_len(list, &len), APIKEYS_OK);
    for (size_t i = 0; i < len; i++) {
        const struct apikeys_key_info *info = NULL;
        CHECK_STATUS(apikeys_list_get(list, i, &info), APIKEYS_OK);
        if (info && strcmp(info->id, id) == 0) {
            count = info->use_count;
        }
    }
    apikeys_list_free(list);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    return count;
}

static void test_arguments(void) {
    apikeys_store *untouched = (apikeys_store *)0x1;
    const char *path = scratch_path("arguments.redb");
    CHECK_STATUS(apikeys_store_open_persistent(path, strlen(path), NULL, 0, 0, NULL),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_SET();
    CHECK_STATUS(apikeys_store_open_persistent(NULL, 5, NULL, 0, 0, &untouched),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_store_open_persistent(path, strlen(path), NULL, 3, 0, &untouched),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_store_open_persistent(NULL, 0, NULL, 0, 0, &untouched),
                 APIKEYS_INVALID_ARGUMENT); /* (NULL, 0): the empty path */
    CHECK_STATUS(apikeys_store_open_persistent("a\0b", 3, NULL, 0, 0, &untouched),
                 APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_store_open_persistent("\xff\xfe", 2, NULL, 0, 0, &untouched),
                 APIKEYS_INVALID_ARGUMENT); /* not UTF-8 */
    CHECK_STATUS(apikeys_store_open_persistent(path, strlen(path), NULL, 0, 4, &untouched),
                 APIKEYS_INVALID_ARGUMENT); /* unknown flag */
    CHECK_STATUS(apikeys_store_open_persistent(scratch, strlen(scratch), NULL, 0, 0, &untouched),
                 APIKEYS_INVALID_ARGUMENT); /* a directory */
    CHECK(untouched == (apikeys_store *)0x1);
    CHECK_STATUS(apikeys_store_persistent_opens(NULL), APIKEYS_NULL_ARGUMENT);
    CHECK(opens() == 0); /* nothing above opened anything */
}

static void test_one_handle_per_arguments(void) {
    apikeys_store *first = NULL, *again = NULL, *exclusive = NULL, *exclusive_again = NULL;
    CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &first), APIKEYS_OK);
    CHECK(first != NULL);
    CHECK(opens() == 1);
    for (int i = 0; i < 100; i++) {
        CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &again),
                     APIKEYS_OK);
        CHECK(again == first);
    }
    CHECK(opens() == 1);

    /* close belongs to the library: the handle stays open and usable. */
    CHECK_STATUS(apikeys_store_close(first), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_validate(first, "flz_sk_not_a_key"), APIKEYS_MALFORMED);
    CHECK_STATUS(apikeys_store_flush(first), APIKEYS_OK);
    CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &again), APIKEYS_OK);
    CHECK(again == first);

    /* Another pepper is another store: the file refuses it; nothing is kept. */
    apikeys_store *untouched = (apikeys_store *)0x1;
    CHECK_STATUS(open_persistent("shared.redb", "another", APIKEYS_OPEN_SHARED, &untouched),
                 APIKEYS_WRONG_PEPPER);
    CHECK(untouched == (apikeys_store *)0x1);
    CHECK_STATUS(open_persistent("shared.redb", NULL, APIKEYS_OPEN_SHARED, &untouched),
                 APIKEYS_WRONG_PEPPER);
    CHECK(untouched == (apikeys_store *)0x1);
    CHECK(opens() == 1);

    /* Other flags or another path: other handles. */
    CHECK_STATUS(open_persistent("exclusive.redb", "pepper", 0, &exclusive), APIKEYS_OK);
    CHECK(exclusive != NULL && exclusive != first);
    CHECK_STATUS(open_persistent("exclusive.redb", "pepper", 0, &exclusive_again), APIKEYS_OK);
    CHECK(exclusive_again == exclusive);
    CHECK(opens() == 2);
}

/* apikeys_persistent_header_check: the persistent handle found (or
 * opened) and the header's key verified in one call, answering as
 * apikeys_header_verify answers on that handle; a store that cannot be
 * opened fails first, whatever the header; id_out written on success only. */
static apikeys_status header_check(const char *name, const char *pepper, const char *header,
                                   const char *scope, char *id_out) {
    const char *path = scratch_path(name);
    return apikeys_persistent_header_check(path, strlen(path), pepper, pepper ? strlen(pepper) : 0,
                                           APIKEYS_OPEN_SHARED, header, header ? strlen(header) : 0,
                                           scope, scope ? strlen(scope) : 0, id_out);
}

static void test_header_check(void) {
    apikeys_store *store = NULL;
    CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &store), APIKEYS_OK);
    uint64_t before = opens();
    struct apikeys_key *key = NULL, *revoked = NULL;
    CHECK_STATUS(apikeys_key_generate(store, "header", 6, NULL, 0, "contacts:*", 10, NULL, 0, 0, &key),
                 APIKEYS_OK);
    CHECK_STATUS(apikeys_key_generate(store, "revoked", 7, NULL, 0, NULL, 0, NULL, 0, 0, &revoked),
                 APIKEYS_OK);
    const struct apikeys_key_info *info = NULL, *revoked_info = NULL;
    CHECK_STATUS(apikeys_key_info(key, &info), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_info(revoked, &revoked_info), APIKEYS_OK);
    const char *secret = NULL, *revoked_secret = NULL;
    size_t secret_len = 0, revoked_len = 0;
    CHECK_STATUS(apikeys_key_secret(key, &secret, &secret_len), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_secret(revoked, &revoked_secret, &revoked_len), APIKEYS_OK);
    bool newly = false;
    CHECK_STATUS(apikeys_key_revoke(store, revoked_info->id, strlen(revoked_info->id), &newly), APIKEYS_OK);
    char header[128], revoked_header[128];
    snprintf(header, sizeof header, "  bearer %.*s\t", (int)secret_len, secret);
    snprintf(revoked_header, sizeof revoked_header, "Bearer %.*s", (int)revoked_len, revoked_secret);

    char id[APIKEYS_ID_SIZE];
    CHECK_STATUS(header_check("shared.redb", "pepper", header, NULL, id), APIKEYS_OK);
    CHECK_STR(id, info->id);
    CHECK_STATUS(header_check("shared.redb", "pepper", header, "contacts:read", NULL), APIKEYS_OK);
    CHECK_STATUS(header_check("shared.redb", "pepper", header, "", NULL), APIKEYS_OK); /* no scope */

    /* Refusals: id_out untouched. */
    memset(id, 'x', sizeof id);
    CHECK_STATUS(header_check("shared.redb", "pepper", header, "deals:read", id),
                 APIKEYS_INSUFFICIENT_SCOPE);
    CHECK_STATUS(header_check("shared.redb", "pepper", revoked_header, NULL, id), APIKEYS_REVOKED);
    CHECK_STATUS(header_check("shared.redb", "pepper", "Bearer flz_sk_short", NULL, id),
                 APIKEYS_MALFORMED);
    const char *bad_headers[] = {NULL, "", "Bearer", "Basic abc", "Bearerx abc", "Bearer a b", "Bearer \xff"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        CHECK_STATUS(header_check("shared.redb", "pepper", bad_headers[i], NULL, id), APIKEYS_BAD_HEADER);
    }
    /* A NUL inside the value is a byte of the value, not its end. */
    const char *path = scratch_path("shared.redb");
    char with_nul[160];
    int len = snprintf(with_nul, sizeof with_nul, "%s", header);
    with_nul[len] = '\0';
    memcpy(with_nul + len + 1, "x", 2);
    CHECK_STATUS(apikeys_persistent_header_check(path, strlen(path), "pepper", 6, APIKEYS_OPEN_SHARED,
                                                 with_nul, (size_t)len + 2, NULL, 0, id),
                 APIKEYS_BAD_HEADER);
    for (size_t i = 0; i < sizeof id; i++) {
        CHECK(id[i] == 'x');
    }

    /* Arguments. */
    CHECK_STATUS(apikeys_persistent_header_check(NULL, 5, "pepper", 6, APIKEYS_OPEN_SHARED, header,
                                                 strlen(header), NULL, 0, id),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_persistent_header_check(path, strlen(path), "pepper", 6, APIKEYS_OPEN_SHARED,
                                                 NULL, 3, NULL, 0, id),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(apikeys_persistent_header_check(path, strlen(path), "pepper", 6, APIKEYS_OPEN_SHARED,
                                                 header, strlen(header), NULL, 4, id),
                 APIKEYS_NULL_ARGUMENT);
    CHECK_STATUS(header_check("shared.redb", "pepper", header, "\xff", id), APIKEYS_INVALID_ARGUMENT);
    CHECK_STATUS(apikeys_persistent_header_check(path, strlen(path), "pepper", 6, 0xFF00, header,
                                                 strlen(header), NULL, 0, id),
                 APIKEYS_INVALID_ARGUMENT);

    /* A store that cannot be opened: its failure, whatever the header. */
    CHECK_STATUS(header_check("shared.redb", "another", header, NULL, id), APIKEYS_WRONG_PEPPER);
    CHECK_STATUS(header_check("shared.redb", "another", NULL, NULL, id), APIKEYS_WRONG_PEPPER);
    CHECK_STATUS(header_check("missing/keys.redb", "pepper", "Basic abc", NULL, id), APIKEYS_IO);
    for (size_t i = 0; i < sizeof id; i++) {
        CHECK(id[i] == 'x');
    }
    CHECK(opens() == before); /* the handle opened above, found every time */

    apikeys_key_free(key);
    apikeys_key_free(revoked);
}

struct report {
    int passed;
    int failed;
};

static void test_fork_and_exit_hook(void) {
    apikeys_store *parent = NULL;
    CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &parent), APIKEYS_OK);
    apikeys_key *key = NULL;
    CHECK_STATUS(apikeys_key_generate(parent, "forked", 6, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_OK);
    const char *secret = NULL;
    CHECK_STATUS(apikeys_key_secret(key, &secret, NULL), APIKEYS_OK);
    const struct apikeys_key_info *info = NULL;
    CHECK_STATUS(apikeys_key_info(key, &info), APIKEYS_OK);
    char id[APIKEYS_ID_SIZE];
    snprintf(id, sizeof id, "%s", info->id);
    char key_text[128];
    snprintf(key_text, sizeof key_text, "%s", secret);
    CHECK_STATUS(apikeys_key_free(key), APIKEYS_OK);

    /* Uses in the parent, flushed explicitly. */
    for (int i = 0; i < 5; i++) {
        CHECK_STATUS(apikeys_key_validate(parent, key_text), APIKEYS_OK);
    }
    CHECK_STATUS(apikeys_store_flush(parent), APIKEYS_OK);
    CHECK(use_count_in_file("shared.redb", "pepper", id) == 5);

    /* A forked child never gets the parent's handle; it opens its own. */
    int channel[2];
    CHECK(pipe(channel) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(channel[0]);
        checks_passed = 0;
        checks_failed = 0;
        CHECK(opens() == 0);
        CHECK_STATUS(apikeys_key_validate(parent, key_text), APIKEYS_USED_AFTER_FORK);
        CHECK_STATUS(apikeys_store_close(parent), APIKEYS_OK); /* still the library's: nothing */
        apikeys_store *child = NULL;
        CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &child),
                     APIKEYS_OK);
        CHECK(child != NULL && child != parent);
        apikeys_store *again = NULL;
        CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &again),
                     APIKEYS_OK);
        CHECK(again == child);
        CHECK(opens() == 1);
        for (int i = 0; i < 7; i++) {
            CHECK_STATUS(apikeys_key_validate(child, key_text), APIKEYS_OK);
        }
        CHECK_STATUS(apikeys_store_flush(child), APIKEYS_OK);
        struct report counts = {checks_passed, checks_failed};
        ssize_t written = write(channel[1], &counts, sizeof counts);
        _exit(written == (ssize_t)sizeof counts ? 0 : 3);
    }
    close(channel[1]);
    struct report counts = {0, 0};
    ssize_t got = read(channel[0], &counts, sizeof counts);
    close(channel[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(got == (ssize_t)sizeof counts);
    checks_passed += counts.passed;
    checks_failed += counts.failed;
    CHECK(use_count_in_file("shared.redb", "pepper", id) == 12);
    /* The parent's handle was left alone by the child. */
    CHECK_STATUS(apikeys_key_validate(parent, key_text), APIKEYS_OK);
    CHECK_STATUS(apikeys_store_flush(parent), APIKEYS_OK);
    CHECK(opens() == 2);

    /* A fresh process uses the key 3 times through a persistent handle and
     * returns from main before any periodic flush (every second): only the
     * exit hook writes those uses. */
    char *child_argv[] = {program, scratch, "exit-hook", key_text, NULL};
    CHECK(posix_spawn(&pid, program, NULL, NULL, child_argv, environ) == 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(use_count_in_file("shared.redb", "pepper", id) == 16);
}

/* "exit-hook" mode: 3 uses, no flush, no close, a normal exit. Prints
 * nothing on success; the exit status says whether every check passed. */
static int exit_hook_child(const char *key_text) {
    apikeys_store *store = NULL;
    CHECK_STATUS(open_persistent("shared.redb", "pepper", APIKEYS_OPEN_SHARED, &store), APIKEYS_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(apikeys_key_validate(store, key_text), APIKEYS_OK);
    }
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK); /* nothing: the hook closes it */
    return checks_failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[2], "exit-hook") == 0) {
        snprintf(scratch, sizeof scratch, "%s", argv[1]);
        return exit_hook_child(argv[3]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s <empty scratch directory>\n", argv[0]);
        return 2;
    }
    program = argv[0];
    snprintf(scratch, sizeof scratch, "%s", argv[1]);
    test_arguments();
    test_one_handle_per_arguments();
    test_header_check();
    test_fork_and_exit_hook();
    /* This process's persistent handles are closed by the exit hook, after
     * report(); LeakSanitizer, whose check was registered before it, runs
     * after it. */
    return report("test_persistent");
}
