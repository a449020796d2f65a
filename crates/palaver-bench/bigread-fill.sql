-- Fills rooms `big` (:big messages) and `small` (:small messages) for
-- `bench.sh` (ONLY=bigread) the way the server stores them: seqs 1..N
-- gapless, rooms.last_seq = N, texts of about 64 characters, a handful of
-- authors, anonymous (author_id NULL, as seed-API messages are).
--
-- For this session only: foreign-key triggers are off (every row names a
-- room inserted just before) and the commit does not wait for its WAL
-- flush. The cluster's settings, which the reads are measured under, are
-- untouched.
\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;
BEGIN;
INSERT INTO rooms (name, last_seq) VALUES ('big', :big), ('small', :small);
INSERT INTO messages (room, seq, author, author_id, text, client_id, client_ip, sent_at)
SELECT r.name,
       g,
       (ARRAY['Ada', 'Bob', 'Cyd', 'Dee', 'Eve', 'Fay', 'Gus'])[1 + g % 7],
       NULL,
       left(concat_ws(' ',
                      w.a[1 + g % 16], w.a[1 + (g / 3) % 16], w.a[1 + (g / 7) % 16],
                      w.a[1 + (g / 11) % 16], w.a[1 + (g / 13) % 16], w.a[1 + (g / 17) % 16],
                      w.a[1 + (g / 19) % 16], w.a[1 + (g / 23) % 16], w.a[1 + (g / 29) % 16],
                      '#' || g),
            64),
       NULL,
       '127.0.0.1',
       timestamptz '2026-01-01 00:00:00+00' + g * interval '50 milliseconds'
FROM (VALUES ('big', :big::bigint), ('small', :small::bigint)) AS r (name, n)
CROSS JOIN (SELECT ARRAY['deploy', 'looks', 'good', 'to', 'me', 'the', 'review', 'of',
                         'staging', 'build', 'passed', 'after', 'lunch', 'could', 'you',
                         'check']) AS w (a)
CROSS JOIN LATERAL generate_series(1, r.n) AS g;
COMMIT;
