/* Processes: a second process opening an exclusive store gets LOCKED; a
 * handle used in a forked child answers USED_AFTER_FORK and can be closed
 * there without harming the parent's file; shared mode lets processes see
 * each other's revocations.
 *
 * Children report their own check counts to the parent through a pipe and
 * leave with _exit(): the handle they inherited is deliberately leaked (the
 * file belongs to the parent), which LeakSanitizer must not count at exit.
 *
 * Usage: test_fork <empty scratch directory> */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char scratch[512];

static const char *scratch_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    return path;
}

static apikeys_status open_at(const char *name, uint32_t flags, apikeys_store **out) {
    const char *path = scratch_path(name);
    return apikeys_store_open(path, strlen(path), NULL, 0, flags, out);
}

/* Runs `child` in a forked process and adds its check counts to ours. */
static void in_child(void (*child)(void *), void *arg) {
    int channel[2];
    CHECK(pipe(channel) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(channel[0]);
        checks_passed = 0;
        checks_failed = 0;
        child(arg);
        int counts[2] = {checks_passed, checks_failed};
        ssize_t written = write(channel[1], counts, sizeof counts);
        _exit(written == (ssize_t)sizeof counts ? 0 : 3);
    }
    close(channel[1]);
    int counts[2] = {0, 0};
    ssize_t got = read(channel[0], counts, sizeof counts);
    close(channel[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(got == (ssize_t)sizeof counts); /* the child ran to the end */
    checks_passed += counts[0];
    checks_failed += counts[1];
}

struct inherited {
    apikeys_store *store;
    const char *secret;
    const char *id;
};

static void child_opens_the_locked_file(void *arg) {
    (void)arg;
    apikeys_store *store = (apikeys_store *)0x1;
    CHECK_STATUS(open_at("exclusive.redb", 0, &store), APIKEYS_LOCKED);
    CHECK(strstr(apikeys_last_error(), "shared mode") != NULL);
    CHECK_STATUS(open_at("exclusive.redb", APIKEYS_OPEN_SHARED, &store), APIKEYS_LOCKED);
    CHECK(store == (apikeys_store *)0x1);
}

static void child_uses_the_parents_handle(void *arg) {
    struct inherited *parent = arg;
    apikeys_store *store = parent->store;
    apikeys_verified *verified = (apikeys_verified *)0x1;
    CHECK_STATUS(apikeys_key_verify(store, parent->secret, strlen(parent->secret), NULL, 0,
                                    &verified),
                 APIKEYS_USED_AFTER_FORK);
    CHECK(strstr(apikeys_last_error(), "fork") != NULL);
    CHECK(verified == (apikeys_verified *)0x1);
    char header[128];
    snprintf(header, sizeof header, "Bearer %s", parent->secret);
    CHECK_STATUS(apikeys_header_verify(store, header, strlen(header), NULL, 0, NULL),
                 APIKEYS_USED_AFTER_FORK);
    apikeys_key *key = (apikeys_key *)0x1;
    CHECK_STATUS(apikeys_key_generate(store, "child", 5, NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_USED_AFTER_FORK);
    CHECK(key == (apikeys_key *)0x1);
    CHECK_STATUS(apikeys_key_revoke(store, parent->id, strlen(parent->id), NULL),
                 APIKEYS_USED_AFTER_FORK);
    CHECK_STATUS(apikeys_key_revoke_secret(store, parent->secret, strlen(parent->secret), NULL),
                 APIKEYS_USED_AFTER_FORK);
    CHECK_STATUS(apikeys_key_rotate(store, parent->id, strlen(parent->id), 0, &key),
                 APIKEYS_USED_AFTER_FORK);
    apikeys_list *list = NULL;
    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_ALL, 0, &list), APIKEYS_USED_AFTER_FORK);
    CHECK_STATUS(apikeys_store_flush(store), APIKEYS_USED_AFTER_FORK);
    uint16_t code = 0;
    const char *body = NULL;
    CHECK_STATUS(apikeys_status_http(APIKEYS_USED_AFTER_FORK, &code, &body), APIKEYS_OK);
    CHECK(code == 500);
    /* Closing frees the child's copy and leaves the parent's file alone. */
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    /* The offline check needs no store: it still works in the child. */
    CHECK_STATUS(apikeys_is_well_formed(parent->secret, strlen(parent->secret)), APIKEYS_OK);
}

static void child_revokes_in_shared_mode(void *arg) {
    struct inherited *parent = arg;
    apikeys_store *store = NULL;
    CHECK_STATUS(open_at("shared.redb", APIKEYS_OPEN_SHARED, &store), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, parent->secret, strlen(parent->secret), NULL, 0, NULL),
                 APIKEYS_OK);
    bool newly = false;
    CHECK_STATUS(apikeys_key_revoke(store, parent->id, strlen(parent->id), &newly), APIKEYS_OK);
    CHECK(newly);
    apikeys_key *key = NULL;
    CHECK_STATUS(apikeys_key_generate(store, "from the child", 14, NULL, 0, NULL, 0, NULL, 0, 0,
                                      &key),
                 APIKEYS_OK);
    apikeys_key_free(key);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
}

static apikeys_key *generate(apikeys_store *store, const char *name, char *secret) {
    apikeys_key *key = NULL;
    CHECK_STATUS(apikeys_key_generate(store, name, strlen(name), NULL, 0, NULL, 0, NULL, 0, 0, &key),
                 APIKEYS_OK);
    const char *text = NULL;
    size_t len = 0;
    CHECK_STATUS(apikeys_key_secret(key, &text, &len), APIKEYS_OK);
    memcpy(secret, text, len + 1);
    return key;
}

static const char *key_id(const apikeys_key *key) {
    const struct apikeys_key_info *info = NULL;
    CHECK_STATUS(apikeys_key_info(key, &info), APIKEYS_OK);
    return info ? info->id : "";
}

static void test_exclusive(void) {
    apikeys_store *store = NULL;
    CHECK_STATUS(open_at("exclusive.redb", 0, &store), APIKEYS_OK);
    char secret[64];
    apikeys_key *key = generate(store, "Parent", secret);
    struct inherited parent = {store, secret, key_id(key)};

    in_child(child_opens_the_locked_file, NULL);
    in_child(child_uses_the_parents_handle, &parent);

    /* The parent's handle and file are intact. */
    CHECK_STATUS(apikeys_key_verify(store, secret, strlen(secret), NULL, 0, NULL), APIKEYS_OK);
    char second[64];
    apikeys_key *second_key = generate(store, "After the children", second);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    store = NULL;
    CHECK_STATUS(open_at("exclusive.redb", 0, &store), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, secret, strlen(secret), NULL, 0, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_key_verify(store, second, strlen(second), NULL, 0, NULL), APIKEYS_OK);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    apikeys_key_free(key);
    apikeys_key_free(second_key);
}

static void test_shared(void) {
    apikeys_store *store = NULL;
    CHECK_STATUS(open_at("shared.redb", APIKEYS_OPEN_SHARED, &store), APIKEYS_OK);
    char secret[64];
    apikeys_key *key = generate(store, "Shared", secret);
    CHECK_STATUS(apikeys_key_verify(store, secret, strlen(secret), NULL, 0, NULL), APIKEYS_OK);
    struct inherited parent = {store, secret, key_id(key)};

    in_child(child_revokes_in_shared_mode, &parent);
    /* The child's revocation is seen by the parent's next verify. */
    CHECK_STATUS(apikeys_key_verify(store, secret, strlen(secret), NULL, 0, NULL), APIKEYS_REVOKED);
    apikeys_list *list = NULL;
    CHECK_STATUS(apikeys_key_list(store, APIKEYS_LIST_ALL, 0, &list), APIKEYS_OK);
    size_t count = 0;
    CHECK_STATUS(apikeys_list_len(list, &count), APIKEYS_OK);
    CHECK(count == 2); /* the parent's key and the child's */
    apikeys_list_free(list);
    CHECK_STATUS(apikeys_store_close(store), APIKEYS_OK);
    apikeys_key_free(key);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
        return 2;
    }
    snprintf(scratch, sizeof scratch, "%s", argv[1]);
    test_exclusive();
    test_shared();
    return report("test_fork");
}
