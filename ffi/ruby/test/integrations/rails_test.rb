# frozen_string_literal: true

# ApiKeys::Rails::Authenticated in a minimal Rails 6.1 API app (Debian:
# ruby-railties, ruby-actionpack) written into a temporary directory, booted
# as Rails boots an app (config/environment.rb), driven by rack-test. Its
# initializer and ContactsController are the README's, read from it.
require_relative "integration_helper"
require_relative "readme_snippets"
require "rack/test"
require "stringio"

module RailsApp
  README = ReadmeSnippets.blocks("## Rails").first
  FILES = {
    "config.ru" => <<~RUBY,
      require_relative "config/environment"
      run Rails.application
    RUBY
    "config/application.rb" => <<~RUBY,
      require "rails"
      require "action_controller/railtie"
      require "apikeys/rails"

      module KeysApp
        class Application < Rails::Application
          config.load_defaults 6.1
          config.api_only = true
          config.eager_load = false
          config.secret_key_base = "test only " * 8
          config.logger = Logger.new(ENV.fetch("RAILS_TEST_LOG"))
          config.hosts.clear
        end
      end
    RUBY
    "config/environment.rb" => <<~RUBY,
      require_relative "application"
      Rails.application.initialize!
    RUBY
    "config/initializers/apikeys.rb" => ReadmeSnippets.file(README, "config/initializers/apikeys.rb"),
    "config/routes.rb" => <<~RUBY,
      Rails.application.routes.draw do
        get "contacts" => "contacts#index"
        get "contacts/export" => "contacts#export"
        get "billing" => "billing#show"
        get "whoami" => "billing#whoami"
        get "public" => "billing#public"
        get "broken" => "broken#show"
      end
    RUBY
    "app/controllers/contacts_controller.rb" => ReadmeSnippets.file(README, "app/controllers/contacts_controller.rb"),
    "app/controllers/billing_controller.rb" => <<~RUBY,
      class BillingController < ActionController::API
        include ApiKeys::Rails::Authenticated
        require_api_key scope: "billing:read", only: :show
        require_api_key only: :whoami
        # public: no key

        def show
          render json: { id: current_api_key.id, name: current_api_key.name, scopes: current_api_key.scopes }
        end

        def whoami
          show
        end

        def public
          render plain: "public, key: \#{current_api_key || 'none'}"
        end
      end
    RUBY
    "app/controllers/broken_controller.rb" => <<~RUBY
      class BrokenController < ActionController::API
        include ApiKeys::Rails::Authenticated
        self.api_key_store = -> { ApiKeys.store(ENV.fetch("APIKEYS_BROKEN_DB")) }
        require_api_key scope: "contacts:read"

        def show
          render plain: "never served"
        end
      end
    RUBY
  }.freeze

  def self.boot!
    root = File.join(Dir.mktmpdir("apikeys-rails-app"), "app")
    Minitest.after_run { FileUtils.remove_entry(File.dirname(root)) }
    # Where the README's initializer says the store is.
    KeyFixture.create!(File.join(root, "db", "apikeys.redb"))
    FILES.each do |relative, text|
      file = File.join(root, relative)
      FileUtils.mkdir_p(File.dirname(file))
      File.write(file, text)
    end
    ENV["RAILS_TEST_LOG"] = File.join(root, "log.txt")
    ENV["APIKEYS_PEPPER"] = KeyFixture::PEPPER
    ENV["APIKEYS_BROKEN_DB"] = KeyFixture.broken_path
    ENV["RAILS_ENV"] = "production"
    require File.join(root, "config/environment")
    root
  end

  ROOT = boot!
end

class RailsIntegrationTest < Minitest::Test
  include Rack::Test::Methods
  include AuthenticationCases

  def app
    Rails.application
  end

  def json_content_type
    "application/json; charset=utf-8"
  end

  def call_app(path, authorization)
    env = { "rack.errors" => StringIO.new, "HTTP_HOST" => "example.org" }
    env["HTTP_AUTHORIZATION"] = authorization unless authorization.nil?
    response = Rack::MockRequest.new(app).get(path, env)
    [response.status, response.headers.to_h.transform_keys(&:downcase), response.body]
  end

  def test_the_app_booted_from_its_directory
    assert_equal RailsApp::ROOT, Rails.root.to_s
    assert_equal "6.1", Rails.version[0, 3]
    assert_includes ContactsController.ancestors, ApiKeys::Rails::Authenticated
  end

  def test_a_store_failure_is_logged
    status, = call_app("/broken", bearer(:reader))
    assert_equal 500, status
    assert_match(/apikeys: answering 500, the key store failed: ApiKeys::StoreCorrupted: /,
                 File.read(ENV.fetch("RAILS_TEST_LOG")))
  end

  def test_rack_test_sees_the_same_answers
    header "Authorization", bearer(:reader)
    get "/contacts"
    assert_equal [200, KeyFixture.body_for(:reader)], [last_response.status, last_response.body]
    header "Authorization", nil
    get "/contacts"
    assert_equal [401, "Bearer"], [last_response.status, last_response.headers["WWW-Authenticate"]]
  end

  def test_a_scope_that_is_not_a_string_is_refused_when_the_controller_loads
    error = assert_raises(TypeError) do
      Class.new(ActionController::API) do
        include ApiKeys::Rails::Authenticated
        require_api_key scope: :contacts
      end
    end
    assert_match(/scope must be a String/, error.message)
  end
end
