# frozen_string_literal: true

# puma in cluster mode for servers/app.ru: the test's and the benchmark's.
# PUMA_BIND (tcp://127.0.0.1:PORT, port 0 for any free one), PUMA_WORKERS
# (4), PUMA_THREADS (threads per worker, 1).
workers Integer(ENV.fetch("PUMA_WORKERS", "4"))
threads_count = Integer(ENV.fetch("PUMA_THREADS", "1"))
threads threads_count, threads_count
bind ENV.fetch("PUMA_BIND")
environment "production"
# The app (and ApiKeys.configure, which opens nothing) loads once in the
# master; each worker opens its own store after the fork.
preload_app!
log_requests false
# A graceful stop (SIGTERM) ends the master with status 0 rather than by the signal.
raise_exception_on_sigterm false

# Opens the worker's store as it boots, so a store it cannot open (wrong
# pepper, permissions) shows in the log at once; without this hook the first
# request opens it. The store is closed, its usage flushed, when the worker
# exits (ApiKeys' at_exit): puma's workers leave through a normal exit on a
# graceful stop.
on_worker_boot do
  ApiKeys.store
end
