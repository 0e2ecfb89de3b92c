# frozen_string_literal: true

require "rbconfig"
require "timeout"

# Starts a forking server on servers/app.ru on a free 127.0.0.1 port and
# stops it gracefully: PumaCluster (servers/puma.rb) for the puma test and
# the benchmark, UnicornCluster (servers/unicorn.rb) for the unicorn test.
# Its workers run as `user` when given (the tests run as root: workers run
# as www-data, as in production); its output is collected in #output.
class ServerCluster
  HERE = File.expand_path(__dir__)
  GEM_LIB = File.expand_path("../lib", HERE)
  # Bounds, not measurements: how long puma may take to boot or stop on a
  # loaded machine before the caller is told it did not.
  BOOT_SECONDS = 120
  STOP_SECONDS = 120

  attr_reader :port, :pid, :workers, :worker_pids

  def initialize(db:, workers: 4, threads: 1, user: nil, env: {})
    @db = db
    @workers = workers
    @threads = threads
    @user = user
    @env = env
    @output = +""
    @lock = Mutex.new
    @worker_pids = {}
  end

  def output
    @lock.synchronize { @output.dup }
  end

  def start
    env = { "APIKEYS_DB" => @db, "RUBYLIB" => [GEM_LIB, ENV["RUBYLIB"]].compact.join(":") }
          .merge(server_env).merge(@env)
    reader, writer = IO.pipe
    @pid = Process.spawn(env, *command, out: writer, err: writer, in: File::NULL, pgroup: true, chdir: HERE)
    writer.close
    @collector = Thread.new do
      reader.each_line { |line| @lock.synchronize { @output << line } }
    ensure
      reader.close
    end
    wait_until_booted
    self
  end

  # A graceful stop: each worker finishes its requests and exits normally.
  # Returns the master's Process::Status.
  def stop
    return @status if @status

    Process.kill(graceful_signal, @pid)
    @status = wait_for_exit(STOP_SECONDS) or begin
      kill_group
      raise "#{name} did not stop within #{STOP_SECONDS}s of SIG#{graceful_signal}; output:\n#{output}"
    end
    @collector.join
    @status
  end

  # For an ensure: whatever happened, no puma process is left behind.
  def kill_group
    return if @pid.nil? || @status

    Process.kill("KILL", -@pid)
    @status = wait_for_exit(STOP_SECONDS)
  rescue Errno::ESRCH
    nil
  end

  private

  def wait_until_booted
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + BOOT_SECONDS
    loop do
      text = output
      @port ||= text[port_pattern, 1]&.to_i
      @worker_pids.merge!(booted_workers(text))
      return if @port && @worker_pids.size == @workers && booted?(text)

      if (status = wait_for_exit(0))
        @status = status
        raise "#{name} exited while booting (#{status.inspect}); output:\n#{text}"
      end
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        kill_group
        raise "#{name} did not boot #{@workers} workers within #{BOOT_SECONDS}s; output:\n#{text}"
      end
      sleep 0.05
    end
  end

  def wait_for_exit(seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    loop do
      _, status = Process.waitpid2(@pid, Process::WNOHANG)
      return status if status
      return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline

      sleep 0.05
    end
  end
end

# puma in cluster mode: the whole server runs as the user (puma has no user
# switch of its own: systemd's User= does this in production).
class PumaCluster < ServerCluster
  def name
    "puma"
  end

  def command
    prefix = @user ? ["setpriv", "--reuid=#{@user}", "--regid=#{@user}", "--init-groups", "--"] : []
    prefix + ["puma", "-C", File.join(HERE, "puma.rb"), File.join(HERE, "app.ru")]
  end

  def server_env
    { "PUMA_BIND" => "tcp://127.0.0.1:0", "PUMA_WORKERS" => @workers.to_s, "PUMA_THREADS" => @threads.to_s }
  end

  # SIGTERM: puma stops accepting, lets each worker finish and exit normally.
  def graceful_signal
    "TERM"
  end

  def port_pattern
    %r{Listening on http://127\.0\.0\.1:(\d+)}
  end

  # { worker index => pid } of the workers booted so far.
  def booted_workers(text)
    text.scan(/- Worker (\d+) \(PID: (\d+)\) booted/).to_h { |index, pid| [index.to_i, pid.to_i] }
  end

  def booted?(text)
    text.include?("Use Ctrl-C to stop")
  end
end

# unicorn: the master runs as this process's user and its workers switch to
# the user (unicorn's `user` directive), as unicorn is deployed.
class UnicornCluster < ServerCluster
  def name
    "unicorn"
  end

  def command
    ["unicorn", "-E", "production", "-c", File.join(HERE, "unicorn.rb"), File.join(HERE, "app.ru")]
  end

  def server_env
    env = { "UNICORN_LISTEN" => "127.0.0.1:0", "UNICORN_WORKERS" => @workers.to_s }
    env["UNICORN_USER"] = @user if @user
    env
  end

  # SIGQUIT: unicorn's graceful stop (TERM is its immediate one).
  def graceful_signal
    "QUIT"
  end

  def port_pattern
    /listening on addr=127\.0\.0\.1:(\d+)/
  end

  # "I, [... #PID]  INFO -- : worker=N ready", logged by the worker itself.
  def booted_workers(text)
    text.scan(/#(\d+)\]\s+INFO -- : worker=(\d+) ready/).to_h { |pid, index| [index.to_i, pid.to_i] }
  end

  def booted?(_text)
    true
  end
end
