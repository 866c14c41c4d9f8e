-- paths.lua: wrk script; each request takes the next path of PATHS_FILE
-- (one per line, shuffled by gen.py), so requests spread over all routes.
-- Round-robin rather than random: every route is hit equally often.  The
-- requests are formatted once, up front: wrk shares a core with the
-- backend, and per-request Lua formatting would make wrk the bottleneck.

local requests = {}
local count = 0
local i = 0

-- in each thread, after wrk has set the Host header that wrk.format adds
-- (at load time it has not: the requests would be 400s); each thread
-- starts at its own offset
function init(args)
    for line in io.lines(os.getenv("PATHS_FILE")) do
        count = count + 1
        requests[count] = wrk.format("GET", line)
    end
    i = math.random(count) - 1
end

function request()
    i = i % count + 1
    return requests[i]
end

-- non-2xx answers are counted by wrk ("Non-2xx or 3xx responses"), and
-- util.py reports them as errors
