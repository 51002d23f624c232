-- wrk script: replays pre-built requests from a file, each sent once.
-- Line format: METHOD \t PATH \t HEADERS (joined by \31, each "Name: value") \t BODY
-- Thread i of n takes lines i, i+n, i+2n, ...; a thread that runs out wraps around (the
-- harness generates more than a run can send, and reports any wrap as a shortfall).
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local file, stride = args[1], tonumber(args[2])
  requests, position, wrapped = {}, 0, 0
  local n = 0
  for line in io.lines(file) do
    if n % stride == id then
      local method, path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local h = {}
      for name, value in headers:gmatch("([^\31:]+): ([^\31]*)") do h[name] = value end
      if body == "" then body = nil end
      requests[#requests + 1] = wrk.format(method, path, h, body)
    end
    n = n + 1
  end
end

function request()
  position = position + 1
  if position > #requests then
    position, wrapped = 1, wrapped + 1
  end
  return requests[position]
end
