# frozen_string_literal: true

# unicorn (servers/unicorn.rb: 4 workers, the app preloaded, the store
# opened on each worker's first request): the master runs as root and the
# workers switch to www-data (unicorn's `user`), stopped with QUIT.
require_relative "cluster_cases"

class UnicornClusterTest < Minitest::Test
  include ClusterCases

  def cluster_class
    UnicornCluster
  end

  # unicorn closes every connection and sends no length (and a Date,
  # which the cases leave out).
  def server_headers(_body)
    { "connection" => "close" }
  end
end
