# frozen_string_literal: true

require "digest"
require "json"
require "securerandom"
require "pg"

# The peer of the benchmark: how Laravel Sanctum checks a token, in Rack.
# The SHA-256 hex digest of the bearer token is looked up in PostgreSQL
# (personal_access_tokens.token, unique index), the token's abilities are
# checked (`*` or the scope, as tokenCan does), and last_used_at is updated
# on every request, as Sanctum does. One connection per worker thread,
# opened after the fork; statements prepared once per connection.
class SanctumStyle
  JSON_HEADERS = { "content-type" => "application/json" }.freeze
  UNAUTHORIZED = '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
  FORBIDDEN = '{"success":false,"error":{"code":"FORBIDDEN","message":"API key does not have the required permissions"}}'

  # The table and its rows, as `php artisan migrate` makes it (columns the
  # check reads), filled with `count` tokens; returns the plaintext tokens.
  def self.seed(url, count)
    connection = PG.connect(url)
    connection.exec("SET client_min_messages TO warning")
    connection.exec(<<~SQL)
      DROP TABLE IF EXISTS personal_access_tokens;
      CREATE TABLE personal_access_tokens (
        id bigserial PRIMARY KEY,
        tokenable_type varchar(255) NOT NULL,
        tokenable_id bigint NOT NULL,
        name varchar(255) NOT NULL,
        token varchar(64) NOT NULL UNIQUE,
        abilities text[],
        last_used_at timestamp(0),
        created_at timestamp(0) DEFAULT now(),
        updated_at timestamp(0) DEFAULT now()
      );
    SQL
    tokens = Array.new(count) { |n| "#{n + 1}|#{SecureRandom.alphanumeric(40)}" }
    connection.transaction do
      tokens.each_with_index do |token, n|
        connection.exec_params("INSERT INTO personal_access_tokens (tokenable_type, tokenable_id, name, token, abilities) " \
                               "VALUES ('App\\Models\\User', $1, $2, $3, $4)",
                               [n + 1, "token #{n + 1}", Digest::SHA256.hexdigest(token.split("|", 2).last), "{contacts:read}"])
      end
    end
    connection.exec("ANALYZE personal_access_tokens")
    tokens
  ensure
    connection&.close
  end

  def initialize(url, scope:)
    @url = url
    @scope = scope
  end

  def call(env)
    header = env["HTTP_AUTHORIZATION"]
    token = header&.start_with?("Bearer ") ? header.byteslice(7, header.bytesize) : nil
    return [401, JSON_HEADERS.dup, [UNAUTHORIZED]] if token.nil? || token.empty?

    # Sanctum's "id|secret" tokens: the secret is what is hashed.
    secret = token.include?("|") ? token.split("|", 2).last : token
    connection = connection_for_this_thread
    row = connection.exec_prepared("find_token", [Digest::SHA256.hexdigest(secret)]).first
    return [401, JSON_HEADERS.dup, [UNAUTHORIZED]] if row.nil?

    abilities = PG::TextDecoder::Array.new.decode(row["abilities"])
    return [403, JSON_HEADERS.dup, [FORBIDDEN]] unless abilities.include?("*") || abilities.include?(@scope)

    connection.exec_prepared("touch_token", [row["id"]])
    [200, JSON_HEADERS.dup, [%({"ok":true,"key":"#{row['id']}"})]]
  end

  private

  def connection_for_this_thread
    connection = Thread.current[:sanctum_connection]
    return connection if connection && Thread.current[:sanctum_pid] == Process.pid

    connection = PG.connect(@url)
    connection.prepare("find_token", "SELECT id, abilities FROM personal_access_tokens WHERE token = $1")
    connection.prepare("touch_token", "UPDATE personal_access_tokens SET last_used_at = now(), updated_at = now() WHERE id = $1")
    Thread.current[:sanctum_pid] = Process.pid
    Thread.current[:sanctum_connection] = connection
  end
end
