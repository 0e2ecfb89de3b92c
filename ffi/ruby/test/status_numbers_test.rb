# frozen_string_literal: true

require_relative "test_helper"

# native.rb copies the C ABI's numbers by hand (ruby-ffi cannot read a
# header): check every copy against include/apikeys.h, both ways, so a
# status added to the header without its Ruby constant and exception, or a
# number changed on one side only, fails here.
class StatusNumbersTest < Minitest::Test
  HEADER = File.expand_path("../../../include/apikeys.h", __dir__)
  NATIVE = ApiKeys.const_get(:Native)

  # { "APIKEYS_OK" => 0, ... } of one `enum name { ... };` of the header.
  def header_enum(name)
    text = File.read(HEADER)
    block = text[/^enum #{name} \{(.*?)^\};/m, 1] or flunk("enum #{name} not found in #{HEADER}")
    block = block.gsub(%r{/\*.*?\*/}m, "")
    block.scan(/\b(APIKEYS_[A-Z0-9_]+)\s*=\s*(\d+)/).to_h { |constant, value| [constant, Integer(value)] }
  end

  def statuses
    header_enum("apikeys_status")
  end

  def test_the_header_is_there_to_compare_with
    assert File.file?(HEADER), "#{HEADER} is missing: run the tests from the repository"
    assert_operator statuses.size, :>=, 19, "the status enum was not parsed"
    assert_equal 0, statuses.fetch("APIKEYS_OK")
  end

  def test_every_status_of_the_header_has_the_same_number_in_native_rb
    statuses.each do |constant, value|
      name = constant.delete_prefix("APIKEYS_")
      assert NATIVE.const_defined?(name, false), "native.rb has no #{name} (#{constant} = #{value} in the header)"
      assert_equal value, NATIVE.const_get(name, false), "#{name}: native.rb and the header disagree"
    end
  end

  def test_native_rb_has_no_status_the_header_does_not_know
    header_values = statuses.values
    copied = ApiKeys::ERRORS_BY_STATUS.keys + ApiKeys::Unauthorized::REASONS.keys
    copied.each { |value| assert_includes header_values, value, "status #{value} is not in the header" }
  end

  def test_every_failure_status_raises_its_own_exception
    statuses.each do |constant, value|
      next if value.zero?

      error_class = ApiKeys::ERRORS_BY_STATUS[value]
      refute_nil error_class, "#{constant} (#{value}) has no exception in ApiKeys::ERRORS_BY_STATUS"
      assert_operator error_class, :<, ApiKeys::Error
    end
  end

  def test_every_unauthorized_status_has_a_reason
    unauthorized = ApiKeys::ERRORS_BY_STATUS.select { |_, error_class| error_class == ApiKeys::Unauthorized }
    assert_equal unauthorized.keys.sort, ApiKeys::Unauthorized::REASONS.keys.sort
  end

  def test_the_other_numbers_match_the_header
    assert_equal header_enum("apikeys_open_flag").fetch("APIKEYS_OPEN_SHARED"), NATIVE::OPEN_SHARED
    assert_equal header_enum("apikeys_size").fetch("APIKEYS_ID_SIZE"), NATIVE::ID_SIZE
    assert_equal header_enum("apikeys_size").fetch("APIKEYS_HEADER_SCAN_MAX"), NATIVE::HEADER_SCAN_MAX
    filters = header_enum("apikeys_list_filter").transform_keys { |c| c.delete_prefix("APIKEYS_LIST_").downcase.to_sym }
    assert_equal filters, NATIVE::LIST_FILTERS
    key_statuses = header_enum("apikeys_key_status").to_h { |c, v| [v, c.delete_prefix("APIKEYS_KEY_").downcase.to_sym] }
    assert_equal key_statuses, NATIVE::KEY_STATUSES
  end
end
