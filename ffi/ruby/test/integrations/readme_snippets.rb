# frozen_string_literal: true

# The code blocks of ffi/ruby/README.md, for the tests that run them: the
# README's examples are the tests' apps, so they cannot drift apart.
module ReadmeSnippets
  README = File.expand_path("../../README.md", __dir__)

  # The ```ruby blocks of the section under `heading` ("## Rack"), in order.
  def self.blocks(heading)
    text = File.read(README)
    start = text.index(/^#{Regexp.escape(heading)}$/) or raise "no #{heading} section in #{README}"
    section = text[start + heading.size..]
    section = section[0, section.index(/^##+ /) || section.size]
    section.scan(/^```ruby\n(.*?)^```$/m).flatten
  end

  # The part of a block from the line `# path` to the next such line.
  def self.file(block, path)
    block[/^# #{Regexp.escape(path)}\n(.*?)(?=^# [\w\/.]+(?:, .*)?\n|\z)/m, 1] or raise "no # #{path} in the block"
  end
end
