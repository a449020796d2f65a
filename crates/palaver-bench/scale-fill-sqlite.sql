-- The SQLite twin of scale-fill.sql (read that first): the same rooms,
-- users, memberships, texts, events, reactions and read markers, for
-- bench-scale.sh. Run by `palaver-bench sql --set rooms=N --set per_room=M`
-- (the server's own bundled SQLite: the FTS5 tables of migration 0004 need
-- 3.43+, newer than many sqlite3 shells) over a database the server
-- migrated and the bench users registered in. Messages go in oldest first
-- (by sent_at), through the search triggers of migration 0004, so the FTS5
-- rowids follow time as they do for sends. (In SQLite `||` binds tighter
-- than `%`: the arithmetic is in parentheses.)
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
BEGIN;
CREATE TEMP TABLE scale AS
SELECT :rooms AS rooms, :per_room + (:per_room - 1) / 49 AS seqs,
       (SELECT id FROM users WHERE username = 'palaver-bench') AS bench,
       (SELECT id FROM users WHERE username = 'bench-search') AS searcher;
CREATE TEMP TABLE room_ids (value INTEGER PRIMARY KEY);
INSERT INTO room_ids
WITH RECURSIVE c (x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < max(10, :rooms))
SELECT x FROM c;
CREATE TEMP TABLE seq_ids (value INTEGER PRIMARY KEY);
INSERT INTO seq_ids
WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT seqs FROM scale))
SELECT x FROM c;
INSERT INTO users (id, username, display_name, role, password_hash, created_at)
SELECT 'author-id-' || value, 'author-' || value, 'Author ' || value, 'member', NULL,
       '2026-01-01T00:00:00Z'
FROM room_ids WHERE value < 10;
CREATE TEMP TABLE words (i INTEGER PRIMARY KEY, w TEXT);
INSERT INTO words VALUES (0, 'deploy'), (1, 'looks'), (2, 'good'), (3, 'to'), (4, 'me'),
  (5, 'the'), (6, 'review'), (7, 'of'), (8, 'staging'), (9, 'build'), (10, 'passed'),
  (11, 'after'), (12, 'lunch'), (13, 'could'), (14, 'you'), (15, 'check');
INSERT INTO rooms (name, last_seq, visibility, owner_id, created_at)
SELECT 'big-' || printf('%03d', value), scale.seqs, 'private', scale.bench, '2026-01-01T00:00:00Z'
FROM scale, room_ids WHERE value < scale.rooms;
INSERT INTO room_members (room, user_id, added_at)
SELECT 'big-' || printf('%03d', r.value), u.id, '2026-01-01T00:00:00Z'
FROM scale, room_ids AS r
JOIN (SELECT 'author-id-' || value AS id, -1 AS only_below FROM room_ids WHERE value < 10
      UNION ALL SELECT bench, -1 FROM scale
      UNION ALL SELECT searcher, 50 FROM scale) AS u
  ON u.only_below < 0 OR r.value < u.only_below
WHERE r.value < scale.rooms;
INSERT INTO messages (room, seq, author, author_id, text, client_id, client_ip, sent_at,
                      edited_at, mentions)
SELECT 'big-' || printf('%03d', r),
       s,
       'Author ' || ((s + r) % 10),
       'author-id-' || ((s + r) % 10),
       (SELECT w FROM words WHERE i = s % 16) || ' ' ||
       (SELECT w FROM words WHERE i = (s / 3 + r) % 16) || ' ' ||
       (SELECT w FROM words WHERE i = (s / 7) % 16) || ' ' ||
       (SELECT w FROM words WHERE i = (s / 11 + r) % 16) || ' ' ||
       (SELECT w FROM words WHERE i = (s / 13) % 16) || ' ' ||
       'w' || ((s * 31 + r * 7) % 3000) || ' ' || 'w' || ((s * 17 + r * 101) % 3000) ||
       CASE WHEN (s * 7 + r * 13) % 100 = 0 THEN ' onepct' ELSE '' END ||
       CASE WHEN s = 50 * (seqs / 100) + 1 AND r % 25 = 0 THEN ' zanzibar' ELSE '' END ||
       CASE WHEN s % 1000 = 1 THEN ' @palaver-bench' ELSE '' END ||
       ' #' || s,
       NULL,
       '127.0.0.1',
       strftime('%Y-%m-%dT%H:%M:%fZ', 1767225600 + (s * rooms + r) / 100.0, 'unixepoch'),
       CASE WHEN s % 100 = 49 THEN
         strftime('%Y-%m-%dT%H:%M:%fZ', 1767225600 + ((s + 1) * rooms + r) / 100.0, 'unixepoch') END,
       CASE WHEN s % 1000 = 1 THEN '["' || bench || '"]' END
FROM (SELECT s.value AS s, r.value AS r, scale.rooms, scale.seqs, scale.bench
      FROM scale, seq_ids AS s, room_ids AS r
      WHERE s.value % 50 <> 0 AND r.value < scale.rooms
      ORDER BY s.value, r.value);
INSERT INTO room_events (room, seq, kind, target, user_id, text, mentions, emoji, added, at)
SELECT m.room, m.seq + 1,
       CASE WHEN (m.seq + 1) % 100 = 0 THEN 'reaction' ELSE 'edit' END,
       m.seq,
       m.author_id,
       CASE WHEN (m.seq + 1) % 100 = 50 THEN m.text END,
       CASE WHEN (m.seq + 1) % 100 = 50 THEN '[]' END,
       CASE WHEN (m.seq + 1) % 100 = 0 THEN '👍' END,
       CASE WHEN (m.seq + 1) % 100 = 0 THEN 1 END,
       m.sent_at
FROM messages m, scale WHERE m.room LIKE 'big-%' AND (m.seq + 1) % 50 = 0 AND m.seq < scale.seqs;
INSERT INTO reactions (room, seq, emoji, user_id, at)
SELECT room, target, emoji, user_id, at FROM room_events WHERE kind = 'reaction';
INSERT INTO read_markers (user_id, room, read_seq)
SELECT scale.bench, 'big-' || printf('%03d', value), scale.seqs - value % 50
FROM scale, room_ids WHERE value < scale.rooms;
COMMIT;
ANALYZE;
