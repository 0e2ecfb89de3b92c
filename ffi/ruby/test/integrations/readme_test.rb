# frozen_string_literal: true

# The README's Rack, Sinatra and framework-less examples, read from
# README.md and run as they are (only the store path is this test's).
require_relative "integration_helper"
require_relative "readme_snippets"
require "rack"
require "stringio"
require "sinatra/base"

KeyFixture.create!
ENV["APIKEYS_PEPPER"] = KeyFixture::PEPPER
README_PATH = "/var/lib/myapp/keys.redb"

def readme_code(heading)
  code = ReadmeSnippets.blocks(heading).first
  raise "#{heading}: the example no longer uses #{README_PATH}" unless code.include?(README_PATH)

  code.gsub(README_PATH, KeyFixture.path)
end

# The Sinatra example defines ContactsApi and AdminApi at the top level.
eval(readme_code("## Sinatra"), TOPLEVEL_BINDING, ReadmeSnippets::README) # rubocop:disable Security/Eval

class ReadmeTest < Minitest::Test
  RACK_APP = Rack::Builder.new_from_string(readme_code("## Rack"), ReadmeSnippets::README)

  def get(app, path, authorization)
    env = { "rack.errors" => StringIO.new }
    env["HTTP_AUTHORIZATION"] = authorization if authorization
    response = Rack::MockRequest.new(app).get(path, env)
    [response.status, response.headers["www-authenticate"], response.body]
  end

  def bearer(name)
    "Bearer #{KeyFixture.secret(name)}"
  end

  def who(name)
    JSON.generate(id: KeyFixture.keys.fetch(name).id, name: name.to_s)
  end

  def test_the_rack_example
    assert_equal [200, nil, who(:reader)], get(RACK_APP, "/contacts", bearer(:reader))
    assert_equal [200, nil, who(:contacts_all)], get(RACK_APP, "/contacts", bearer(:contacts_all))
    assert_equal [401, "Bearer", KeyFixture::UNAUTHORIZED_BODY], get(RACK_APP, "/contacts", nil)
    assert_equal [403, 'Bearer error="insufficient_scope"', KeyFixture::FORBIDDEN_BODY],
                 get(RACK_APP, "/contacts", bearer(:billing))
    assert_equal [200, nil, "ok"], get(RACK_APP, "/health", nil)
  end

  def test_the_sinatra_example
    assert_equal [200, nil, who(:reader)], get(ContactsApi, "/contacts", bearer(:reader))
    assert_equal [401, "Bearer", KeyFixture::UNAUTHORIZED_BODY], get(ContactsApi, "/contacts", bearer(:revoked))
    assert_equal [200, nil, "no_scope"], get(ContactsApi, "/whoami", bearer(:no_scope))
    assert_equal [200, nil, "billing of "], get(ContactsApi, "/billing", bearer(:billing))
    assert_equal [403, 'Bearer error="insufficient_scope"', KeyFixture::FORBIDDEN_BODY],
                 get(ContactsApi, "/billing", bearer(:reader))
    assert_equal [200, nil, "keys of everything"], get(AdminApi, "/keys", bearer(:everything))
    assert_equal [403, 'Bearer error="insufficient_scope"', KeyFixture::FORBIDDEN_BODY],
                 get(AdminApi, "/keys", bearer(:contacts_all))
  end

  def test_the_example_without_a_framework
    code = readme_code("## Without a framework")
    run = lambda do |header|
      binding = TOPLEVEL_BINDING.dup
      binding.local_variable_set(:request_authorization_header, header)
      eval("#{code}\n[defined?(key) && key, status, body, headers]", binding, ReadmeSnippets::README) # rubocop:disable Security/Eval
    end
    key, status, = run.call(bearer(:reader))
    assert_equal KeyFixture.keys[:reader].id, key.id
    assert_nil status
    key, status, body, headers = run.call(bearer(:billing))
    assert_nil key
    assert_equal [403, KeyFixture::FORBIDDEN_BODY, 'Bearer error="insufficient_scope"'],
                 [status, body, headers["www-authenticate"]]
  end
end
