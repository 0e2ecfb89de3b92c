#define FFI_SCOPE "NOOP"
typedef struct store store;
uint32_t noop0(void);
uint32_t noop_store(const store *s);
uint32_t noop_cstr(const store *s, const char *key);
uint32_t noop_cstr3(const store *s, const char *key, const char *scope);
uint32_t noop_cstr4(const store *s, const char *key, const char *scope, char *id);
uint32_t noop_len3(const store *s, const char *key, size_t len);
uint32_t noop_len5(const store *s, const char *key, size_t len, const char *scope, size_t scope_len);
uint32_t noop6(const store *s, const char *key, size_t len, const char *scope, size_t scope_len, void **out);
uint32_t noop_handle(uint64_t handle, const char *key);
