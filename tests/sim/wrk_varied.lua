-- wrk script for load-testing the provider simulator with distinct lookups
-- (so every answer is derived, not served from the simulator's answer cache).
--   wrk -t2 -c200 -d10s -s tests/sim/wrk_varied.lua http://127.0.0.1:PORT
local n = 0
request = function()
  n = n + 1
  local path = string.format("/pdl/v5/person/enrich?email=person.%d%%40company%d.com&min_likelihood=6&titlecase=true",
                             n, n % 997)
  return wrk.format("GET", path, { ["X-Api-Key"] = "k" })
end
