-- README.md's Lua example must run as written.
describe("README.md", function()
  it("has a short example that runs", function()
    local f = assert(io.open("README.md", "rb"))
    local text = f:read("a")
    f:close()
    local code = text:match("## A short example\n\n```lua\n(.-)```")
    assert.is_string(code, "README.md lost its example")
    local printed = {}
    local env = setmetatable({ print = function(...) printed[#printed + 1] = table.concat({ ... }, "\t") end },
      { __index = _G })
    local chunk = assert(load(code, "=README.md example", "t", env))
    chunk()
    local found = false
    for _, line in ipairs(printed) do found = found or line == "1\tann\t600" end
    assert.is_true(found, "the example printed: " .. table.concat(printed, "\n"))
    assert.is_truthy(printed[1]:find("^Executing %(default%): "))
  end)
end)
