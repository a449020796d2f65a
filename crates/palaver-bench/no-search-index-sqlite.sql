-- For bench-events.sh's send-noindex: takes migration 0004's search index
-- out of a SQLite database (its three triggers; the FTS5 tables stay, empty
-- from then on). Run by `palaver-bench sql` with the server stopped.
DROP TRIGGER messages_search_insert;
DROP TRIGGER messages_search_update;
DROP TRIGGER messages_search_delete;
