-- wrk script for `bench.sh` (ONLY=bigread): older pages of one room,
-- `GET /api/v1/rooms/$ROOM/messages?before=SEQ&limit=50`, cycling through
-- the seqs of $BEFORE_SEQS (a comma list) so that the figure is not one
-- row set read over and over. Headers given with -H (the session cookie)
-- are sent with every request.
local room = os.getenv("ROOM") or "general"
local seqs = {}
for seq in string.gmatch(os.getenv("BEFORE_SEQS") or "", "%d+") do
  seqs[#seqs + 1] = seq
end
assert(#seqs > 0, "BEFORE_SEQS must list at least one seq")
local i = 0

request = function()
  i = i % #seqs + 1
  return wrk.format("GET", "/api/v1/rooms/" .. room .. "/messages?before=" .. seqs[i] .. "&limit=50")
end
