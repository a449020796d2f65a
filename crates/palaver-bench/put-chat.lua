-- wrk script for `bench.sh` (ONLY=put): the seed endpoint's send,
-- `PUT /chat` with `{"message": "<64 characters>"}` as JSON.
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message":"put-chat bench: one message of sixty-four characters, chat line."}'
