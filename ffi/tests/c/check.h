/* Assertions for the C tests: count passes and failures, print each
 * failure with the library's last error, and report "N passed, M failed". */
#ifndef APIKEYS_TEST_CHECK_H
#define APIKEYS_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "apikeys.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            checks_passed++;                                                     \
        } else {                                                                 \
            checks_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                        \
    } while (0)

/* Compares a status with the expected one; on mismatch prints both names and
 * the last error so a failure explains itself. */
#define CHECK_STATUS(expr, expected)                                             \
    do {                                                                         \
        apikeys_status got_ = (expr);                                            \
        apikeys_status want_ = (expected);                                       \
        if (got_ == want_) {                                                     \
            checks_passed++;                                                     \
        } else {                                                                 \
            checks_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n  got %u (%s), want %u (%s)\n"      \
                    "  last error: %s\n", __FILE__, __LINE__, #expr,             \
                    (unsigned)got_, apikeys_status_str(got_), (unsigned)want_,   \
                    apikeys_status_str(want_), apikeys_last_error());            \
        }                                                                        \
    } while (0)

#define CHECK_STR(actual, expected)                                              \
    do {                                                                         \
        const char *a_ = (actual);                                               \
        const char *e_ = (expected);                                             \
        if (a_ != NULL && e_ != NULL && strcmp(a_, e_) == 0) {                   \
            checks_passed++;                                                     \
        } else {                                                                 \
            checks_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n  got \"%s\", want \"%s\"\n",       \
                    __FILE__, __LINE__, #actual, a_ ? a_ : "(NULL)",             \
                    e_ ? e_ : "(NULL)");                                         \
        }                                                                        \
    } while (0)

/* A failure message must be there and say something. */
#define CHECK_LAST_ERROR_SET() CHECK(apikeys_last_error() != NULL && apikeys_last_error()[0] != '\0')

static int report(const char *program) {
    printf("%s: %d passed, %d failed\n", program, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
