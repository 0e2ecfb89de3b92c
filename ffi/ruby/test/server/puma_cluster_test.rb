# frozen_string_literal: true

# puma in cluster mode (servers/puma.rb: 4 workers, the app preloaded, the
# store opened in on_worker_boot); the whole server runs as www-data.
require_relative "cluster_cases"

class PumaClusterTest < Minitest::Test
  include ClusterCases

  def cluster_class
    PumaCluster
  end

  def server_headers(body)
    { "connection" => "close", "content-length" => body.bytesize.to_s }
  end
end
