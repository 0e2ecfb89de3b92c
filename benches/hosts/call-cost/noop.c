/* Throwaway no-op functions of the shapes a verify entry point could take,
 * for measuring what a host pays per FFI call and per argument (run.sh).
 * Never part of libapikeys. Each does as little as a C function can while
 * still reading its arguments. */
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

uint32_t noop0(void) { return 100; }
uint32_t noop_store(const store *s) { return s ? 100 : 1; }
/* apikeys_key_check's shape: store, NUL-terminated key and scope, id buffer. */
uint32_t noop_cstr(const store *s, const char *key) { return (s && key && key[0]) ? 100 : 1; }
uint32_t noop_cstr3(const store *s, const char *key, const char *scope) {
    return (s && key && key[0] && (!scope || scope[0] != 1)) ? 100 : 1;
}
uint32_t noop_cstr4(const store *s, const char *key, const char *scope, char *id) {
    if (id) id[0] = 0;
    return (s && key && key[0] && (!scope || scope[0] != 1)) ? 100 : 1;
}
uint32_t noop_len3(const store *s, const char *key, size_t len) { return (s && key && len) ? 100 : 1; }
uint32_t noop_len5(const store *s, const char *key, size_t len, const char *scope, size_t scope_len) {
    return (s && key && len && (!scope || scope_len)) ? 100 : 1;
}
/* apikeys_key_verify's shape. */
uint32_t noop6(const store *s, const char *key, size_t len, const char *scope, size_t scope_len,
               void **out) {
    return (s && key && len && (!scope || scope_len) && !out) ? 100 : 1;
}
/* The handle as an integer instead of a pointer. */
uint32_t noop_handle(uint64_t handle, const char *key) { return (handle && key && key[0]) ? 100 : 1; }
