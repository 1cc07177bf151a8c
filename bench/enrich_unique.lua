-- wrk: POST /enrich with a different person every time (never in the cache).
-- KEY comes from the environment; RUN (optional) makes one run's records differ from
-- another's.
local counter = 0
local thread_id = 0
local run = os.getenv("RUN") or tostring(os.time())
function setup(thread)
   thread:set("tid", thread_id)
   thread_id = thread_id + 1
end
function init(args)
   counter = 0
end
function request()
   counter = counter + 1
   local body = string.format('{"email":"person.r%s.t%dn%d@acme%d.com","enrich":["first_name","title"]}',
                              run, tid, counter, counter % 97)
   return wrk.format("POST", "/enrich", {["Content-Type"] = "application/json",
                     ["Authorization"] = "Bearer " .. os.getenv("KEY")}, body)
end
