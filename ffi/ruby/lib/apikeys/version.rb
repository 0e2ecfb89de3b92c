# frozen_string_literal: true

module ApiKeys
  # The gem's version; ApiKeys.library_version is the loaded libapikeys'.
  VERSION = "0.1.0"
end
