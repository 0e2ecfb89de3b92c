# frozen_string_literal: true

# unicorn for servers/app.ru: the unicorn test's. UNICORN_LISTEN
# (127.0.0.1:PORT), UNICORN_WORKERS (4), UNICORN_USER (workers switch to it
# when the master runs as root).
worker_processes Integer(ENV.fetch("UNICORN_WORKERS", "4"))
listen ENV.fetch("UNICORN_LISTEN")
# The app (and ApiKeys.configure, which opens nothing) loads once in the
# master; each worker opens its own store after the fork.
preload_app true
# unicorn switches a worker to this user after after_fork has run: a store
# opened in after_fork would be opened as root. ApiKeys.store opens it on
# the worker's first request instead, as the worker's user.
user(ENV["UNICORN_USER"], ENV["UNICORN_USER"]) if ENV["UNICORN_USER"]

# A worker stopped with QUIT (unicorn's graceful stop) leaves through a
# normal exit, which closes the store (ApiKeys' at_exit) and flushes its
# usage. TERM and INT make it leave at once with exit!: its last second of
# usage counts is lost. Stop unicorn with QUIT.
