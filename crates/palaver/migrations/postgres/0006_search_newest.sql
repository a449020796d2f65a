-- Newest-first order of all messages, for search: a word found in many
-- messages is searched by walking this index from the newest message and
-- stopping at the page's last hit, instead of visiting every match and
-- sorting them (store/search.rs picks the walk when PostgreSQL estimates
-- many matches, the GIN index otherwise).
CREATE INDEX messages_newest ON messages (sent_at, room, seq);
