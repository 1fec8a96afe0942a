-- Replays signed MDM bodies with wrk: the same requests `tafel-sim replay` sends.
--
--   tafel-sim connect-bench --write-bodies /tmp/idle.txt --hold 60 &
--   wrk -t2 -c32 -d10s --latency -s docs/bench/replay.lua \
--       http://127.0.0.1:PORT/mdm/connect -- /tmp/idle.txt
--
-- The file has one request a line: the base64 `Mdm-Signature`, a tab, the plist body
-- (without line breaks). Any server that trusts the signing certificates can be measured
-- with it, e.g. another MDM server enrolled with the same identities.

local requests = {}
local next_index = 0

function init(args)
  local path = args[1] or "bodies.txt"
  for line in io.lines(path) do
    local signature, body = line:match("^([^\t]+)\t(.*)$")
    if signature then
      requests[#requests + 1] = wrk.format("PUT", nil, {
        ["Content-Type"] = "application/x-apple-aspen-mdm",
        ["Mdm-Signature"] = signature,
      }, body)
    end
  end
  if #requests == 0 then
    error("no signed bodies in " .. path)
  end
  -- Each wrk thread starts somewhere else in the list.
  next_index = math.random(#requests) - 1
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
