# frozen_string_literal: true

module ApiKeys
  # One open store per worker process: what a server (puma, unicorn) needs.
  #
  # ApiKeys.store(path, pepper:, shared:) opens the store the first time a
  # process asks for it and hands the same KeyStore back afterwards, keyed by
  # path and options. A process that forked gets its own: the handles it
  # inherited are closed in the child (which frees their memory and leaves
  # the file alone) and never used there. Every store is closed (its usage
  # flushed) when the process exits normally, through at_exit.
  #
  # ApiKeys.configure(path, ...) records the path and options once (in
  # config.ru or a Rails initializer: it opens nothing, so it is safe in a
  # master that forks later); ApiKeys.store with no path then opens that one,
  # and the framework integrations use it.
  class NotConfigured < Error; end

  @stores = {}
  @stores_pid = Process.pid
  @stores_lock = Mutex.new
  @configured = nil
  # The store of @configured opened in this process, for the fast path.
  @configured_store = nil
  @at_exit_registered = false

  # Where Ruby tells of its forks (Process._fork, Ruby 3.1 and later), a
  # child forgets the configured store at once, and the per-request call
  # needs no getpid (a system call, the most of that call's cost); older
  # Rubies compare the pid on every call. Process.daemon forks without
  # Process._fork: it is watched too.
  module ForkWatch
    def _fork
      pid = super
      ApiKeys.__send__(:forked) if pid.zero?
      pid
    end

    def daemon(...)
      answer = super
      ApiKeys.__send__(:forked)
      answer
    end
  end
  FORKS_SEEN = Process.respond_to?(:_fork)
  Process.singleton_class.prepend(ForkWatch) if FORKS_SEEN

  class << self
    # Records the store the integrations open in each process (nothing is
    # opened here). shared defaults to true: servers run several processes,
    # and the command line opens the store beside them.
    def configure(path, pepper: nil, shared: true)
      path = path.to_path if path.respond_to?(:to_path)
      raise TypeError, "path must be a String, not #{path.class}" unless path.is_a?(String)

      @configured = [path, pepper, shared].freeze
      @configured_store = nil
      nil
    end

    # This process's open store for path and options (ApiKeys.configure's
    # when path is nil), opened on the first call in each process. Raises
    # NotConfigured when there is neither, and the errors of KeyStore.new
    # (WrongPepper, StoreCorrupted...) when it cannot open; the next call
    # tries again, as it does after the store was closed.
    def store(path = nil, pepper: nil, shared: true)
      # The integrations' call, on every request: the configured store.
      configured_store = @configured_store
      if path.nil? && configured_store && (FORKS_SEEN || @stores_pid == Process.pid) && !configured_store.closed?
        return configured_store
      end

      if path.nil?
        configured = @configured or
          raise NotConfigured, "no store configured: call ApiKeys.configure(path, pepper: ...) first"
        path, pepper, shared = configured
      end
      path = path.to_path if path.respond_to?(:to_path)
      key = [path, pepper, shared]
      if @stores_pid == Process.pid
        found = @stores[key]
        return found if found && !found.closed?
      end
      opened = open_for_this_process(key)
      @configured_store = opened if key == @configured
      opened
    end

    # Closes every store this process opened through ApiKeys.store (their
    # usage is flushed). Runs at exit (a process leaving through exit!, as
    # unicorn's workers do on TERM, runs no exit handler: its last second
    # of usage is lost); call it to close them earlier. Failures are
    # reported on $stderr, not raised: the process is usually leaving.
    def close_stores
      @stores_lock.synchronize do
        forget_inherited_stores unless @stores_pid == Process.pid
        stores = @stores.values
        @stores = {}
        @configured_store = nil
        stores.each do |store|
          store.close
        rescue Error => e
          warn "apikeys: closing #{store.path}: #{e.class}: #{e.message}"
        end
      end
      nil
    end

    private

    # In a forked child (ForkWatch): the fast path of store no longer
    # answers the parent's store; the next call forgets the inherited ones.
    def forked
      @configured_store = nil
    end

    def open_for_this_process(key)
      @stores_lock.synchronize do
        forget_inherited_stores unless @stores_pid == Process.pid
        @stores.delete(key) if @stores[key]&.closed?
        @stores[key] ||= begin
          path, pepper, shared = key
          opened = KeyStore.new(path, pepper: pepper, shared: shared)
          register_at_exit
          opened
        end
      end
    end

    # In a forked child: the parent's handles answer UsedAfterFork here.
    # Closing them frees their memory without touching the file.
    def forget_inherited_stores
      inherited = @stores.values
      @stores = {}
      @configured_store = nil
      @stores_pid = Process.pid
      # apikeys_store_close answers OK for a parent's handle.
      inherited.each(&:close)
    end

    # Once per program: a forked child inherits the handler, and
    # close_stores' pid check keeps it to the child's own stores.
    def register_at_exit
      return if @at_exit_registered

      @at_exit_registered = true
      at_exit { close_stores }
    end
  end
end
