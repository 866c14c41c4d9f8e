-- soak.lua: wrk script of soak/run.sh.
--
-- Each request is the next line of TARGETS_FILE ("class method path"), the
-- lines cycled round-robin from a per-thread random offset, formatted once
-- up front.  The class goes out as the X-Soak-Class header and comes back
-- (the gateway echoes it with `add_header ... always`, on its own 404/405/
-- 503 answers as well as on proxied ones), so that response() can count
-- statuses per class even with many connections per thread.  done() writes
-- "class status count" lines to COUNTS_FILE.

local requests = {}
local n = 0
local i = 0
counts = {}

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    for line in io.lines(os.getenv("TARGETS_FILE")) do
        local class, method, path = line:match("^(%S+) (%S+) (%S+)$")
        if class then
            n = n + 1
            requests[n] = wrk.format(method, path, { ["X-Soak-Class"] = class })
        end
    end
    i = math.random(n) - 1
end

function request()
    i = i % n + 1
    return requests[i]
end

function response(status, headers, body)
    local class = headers["X-Soak-Class"] or headers["x-soak-class"] or "untagged"
    local key = class .. " " .. status
    counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        local c = t:get("counts")
        if c then
            for k, v in pairs(c) do
                total[k] = (total[k] or 0) + v
            end
        end
    end
    local f = assert(io.open(os.getenv("COUNTS_FILE"), "w"))
    for k, v in pairs(total) do
        f:write(k, " ", v, "\n")
    end
    f:close()
end
