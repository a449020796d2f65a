-- Fills a migrated PostgreSQL database for bench-scale.sh: :rooms private
-- rooms `big-000`... of :per_room messages each, the way the server stores
-- them (issues 17 and 18):
-- - seqs count events: in every room, seq s is a message unless s % 50 = 0;
--   s % 100 = 0 is a reaction (a `room_events` row and a `reactions` row on
--   message s - 1), s % 100 = 50 an edit of message s - 1 (its `edited_at`
--   set); rooms.last_seq is the last seq.
-- - ten authors `author-0`..`author-9` (users, members of every room); the
--   bench user (`palaver-bench`, registered through the API before) is a
--   member of every room, with a read marker 0 to 49 seqs behind the head
--   of each; the search user (`bench-search`) is a member of the first 50.
-- - texts of about 64 characters from a 16-word list, two words of a 3,000
--   word vocabulary (`w0`..`w2999`), the word `onepct` in about 1% of the
--   messages and `zanzibar` in 20 (one message in the middle of
--   every 25th room); one message in 1,000 mentions the bench user.
-- The `messages_search` GIN index is dropped during the insert and built
-- after it (faster than growing it row by row); the generated `search`
-- column is computed on insert as it is for a send.
--
-- For this session only: foreign-key triggers are off (every row names a
-- room and message inserted in the same transaction) and the commit does
-- not wait for its WAL flush. The cluster's settings are untouched.
\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
BEGIN;
DROP INDEX messages_search;
INSERT INTO users (id, username, display_name, role, password_hash)
SELECT 'author-id-' || a, 'author-' || a, 'Author ' || a, 'member', NULL
FROM generate_series(0, 9) AS a;
-- Seqs per room: :per_room messages plus one event every 50 seqs.
CREATE TEMP TABLE scale AS
SELECT :rooms::int AS rooms, (:per_room::bigint + (:per_room::bigint - 1) / 49) AS seqs,
       (SELECT id FROM users WHERE username = 'palaver-bench') AS bench,
       (SELECT id FROM users WHERE username = 'bench-search') AS searcher;
INSERT INTO rooms (name, last_seq, visibility, owner_id)
SELECT 'big-' || lpad(r::text, 3, '0'), scale.seqs, 'private', scale.bench
FROM scale, generate_series(0, scale.rooms - 1) AS r;
INSERT INTO room_members (room, user_id)
SELECT 'big-' || lpad(r::text, 3, '0'), u.id
FROM scale CROSS JOIN generate_series(0, scale.rooms - 1) AS r
CROSS JOIN LATERAL (SELECT 'author-id-' || a AS id FROM generate_series(0, 9) AS a
                    UNION ALL SELECT scale.bench
                    UNION ALL SELECT scale.searcher WHERE r < 50) AS u;
INSERT INTO messages (room, seq, author, author_id, text, client_id, client_ip, sent_at,
                      edited_at, mentions)
SELECT 'big-' || lpad(r::text, 3, '0'),
       s,
       'Author ' || (s + r) % 10,
       'author-id-' || (s + r) % 10,
       concat_ws(' ',
                 w.a[1 + s % 16], w.a[1 + (s / 3 + r) % 16], w.a[1 + (s / 7) % 16],
                 w.a[1 + (s / 11 + r) % 16], w.a[1 + (s / 13) % 16],
                 'w' || (s * 31 + r * 7) % 3000, 'w' || (s * 17 + r * 101) % 3000,
                 CASE WHEN (s * 7 + r * 13) % 100 = 0 THEN 'onepct' END,
                 CASE WHEN s = 50 * (scale.seqs / 100) + 1 AND r % 25 = 0 THEN 'zanzibar' END,
                 CASE WHEN s % 1000 = 1 THEN '@palaver-bench' END,
                 '#' || s),
       NULL,
       '127.0.0.1',
       timestamptz '2026-01-01 00:00:00+00' + (s * scale.rooms + r) * interval '10 milliseconds',
       CASE WHEN s % 100 = 49 THEN timestamptz '2026-01-01 00:00:00+00'
            + ((s + 1) * scale.rooms + r) * interval '10 milliseconds' END,
       CASE WHEN s % 1000 = 1 THEN '["' || scale.bench || '"]' END
FROM scale
CROSS JOIN (SELECT ARRAY['deploy', 'looks', 'good', 'to', 'me', 'the', 'review', 'of',
                         'staging', 'build', 'passed', 'after', 'lunch', 'could', 'you',
                         'check']) AS w (a)
CROSS JOIN generate_series(0, scale.rooms - 1) AS r
CROSS JOIN LATERAL generate_series(1, scale.seqs) AS s
WHERE s % 50 <> 0;
-- Statistics, so the joins below use the primary key (the planner would
-- otherwise take the fresh table for empty and scan it per row).
ANALYZE messages;
INSERT INTO room_events (room, seq, kind, target, user_id, text, mentions, emoji, added, at)
SELECT 'big-' || lpad(r::text, 3, '0'), s,
       CASE WHEN s % 100 = 0 THEN 'reaction' ELSE 'edit' END,
       s - 1,
       'author-id-' || (s + r) % 10,
       CASE WHEN s % 100 = 50 THEN m.text END,
       CASE WHEN s % 100 = 50 THEN '[]' END,
       CASE WHEN s % 100 = 0 THEN '👍' END,
       CASE WHEN s % 100 = 0 THEN true END,
       m.sent_at + interval '5 milliseconds'
FROM scale CROSS JOIN generate_series(0, scale.rooms - 1) AS r
CROSS JOIN LATERAL generate_series(50, scale.seqs, 50) AS s
JOIN messages m ON m.room = 'big-' || lpad(r::text, 3, '0') AND m.seq = s - 1;
ANALYZE room_events;
INSERT INTO reactions (room, seq, emoji, user_id, at)
SELECT room, target, emoji, user_id, at FROM room_events WHERE kind = 'reaction';
INSERT INTO read_markers (user_id, room, read_seq)
SELECT scale.bench, 'big-' || lpad(r::text, 3, '0'), scale.seqs - r % 50
FROM scale, generate_series(0, scale.rooms - 1) AS r;
CREATE INDEX messages_search ON messages USING gin (search);
COMMIT;
