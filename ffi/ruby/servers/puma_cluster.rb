# frozen_string_literal: true

require "rbconfig"
require "timeout"

# Starts puma in cluster mode on servers/app.ru (servers/puma.rb) on a free
# 127.0.0.1 port, and stops it: for the puma test and the benchmark. The
# server runs as `user` when given (the test is root: workers run as
# www-data, as in production); its output is collected in #output.
class PumaCluster
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

  def command
    prefix = @user ? ["setpriv", "--reuid=#{@user}", "--regid=#{@user}", "--init-groups", "--"] : []
    prefix + ["puma", "-C", File.join(HERE, "puma.rb"), File.join(HERE, "app.ru")]
  end

  def start
    env = {
      "APIKEYS_DB" => @db, "PUMA_BIND" => "tcp://127.0.0.1:0", "PUMA_WORKERS" => @workers.to_s,
      "PUMA_THREADS" => @threads.to_s, "RUBYLIB" => [GEM_LIB, ENV["RUBYLIB"]].compact.join(":")
    }.merge(@env)
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

  # A graceful stop (SIGTERM: puma lets each worker finish its requests and
  # exit normally). Returns the master's Process::Status.
  def stop
    return @status if @status

    Process.kill("TERM", @pid)
    @status = wait_for_exit(STOP_SECONDS) or begin
      kill_group
      raise "puma did not stop within #{STOP_SECONDS}s of SIGTERM; output:\n#{output}"
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
      @port ||= text[%r{Listening on http://127\.0\.0\.1:(\d+)}, 1]&.to_i
      text.scan(/- Worker (\d+) \(PID: (\d+)\) booted/) { |index, pid| @worker_pids[index.to_i] = pid.to_i }
      return if @port && @worker_pids.size == @workers && text.include?("Use Ctrl-C to stop")

      if (status = wait_for_exit(0))
        @status = status
        raise "puma exited while booting (#{status.inspect}); output:\n#{text}"
      end
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        kill_group
        raise "puma did not boot #{@workers} workers within #{BOOT_SECONDS}s; output:\n#{text}"
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
