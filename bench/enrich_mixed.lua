-- wrk: POST /enrich, half the time the same person (a cache hit after the first),
-- half the time a new one (a miss: one provider call).  KEY comes from the environment.
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
   local body
   if counter % 2 == 0 then
      body = '{"email":"john.doe@acme.com","enrich":["first_name","title"]}'
   else
      body = string.format('{"email":"soak.r%s.t%dn%d@acme%d.com","enrich":["first_name","title"]}',
                           run, tid, counter, counter % 97)
   end
   return wrk.format("POST", "/enrich", {["Content-Type"] = "application/json",
                     ["Authorization"] = "Bearer " .. os.getenv("KEY")}, body)
end
