-- wrk: the same POST /enrich again and again (answered from the cache).
-- KEY comes from the environment.
wrk.method = "POST"
wrk.body = '{"email":"john.doe@acme.com","enrich":["first_name","title","phone"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
