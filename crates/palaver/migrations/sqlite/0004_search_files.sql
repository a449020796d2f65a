-- Search and files (DESIGN §5d).
--
-- Search: FTS5. `messages` has no rowid (WITHOUT ROWID), so
-- message_search_ids gives each message an integer id, in insertion order
-- (newest last), that both full-text tables use as their rowid:
-- - message_words: the unicode61 tokenizer (words, case and diacritics
--   folded), contentless: it holds the index, not a copy of the text;
-- - message_cjk: the trigram tokenizer, over the messages holding Chinese,
--   Japanese or Korean characters only (written without spaces, so words
--   cannot be split): a query term in those scripts is a substring search
--   (GLOB), through the trigram index from three characters on.
-- Triggers keep both current in the transaction that inserts, edits or
-- deletes the message.
CREATE TABLE message_search_ids (
    id      INTEGER PRIMARY KEY,
    room    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    UNIQUE (room, seq)
);
CREATE VIRTUAL TABLE message_words USING fts5 (
    text, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE message_cjk USING fts5 (text, tokenize = 'trigram');

INSERT INTO message_search_ids (room, seq) SELECT room, seq FROM messages ORDER BY sent_at, room, seq;
INSERT INTO message_words (rowid, text)
    SELECT i.id, m.text FROM message_search_ids i JOIN messages m ON m.room = i.room AND m.seq = i.seq
    WHERE NOT m.deleted;
INSERT INTO message_cjk (rowid, text)
    SELECT i.id, m.text FROM message_search_ids i JOIN messages m ON m.room = i.room AND m.seq = i.seq
    WHERE NOT m.deleted AND m.text GLOB '*[぀-ヿ㐀-䶿一-鿿가-힯豈-﫿]*';

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search_ids (room, seq) VALUES (new.room, new.seq);
    INSERT INTO message_words (rowid, text)
        SELECT id, new.text FROM message_search_ids
        WHERE room = new.room AND seq = new.seq AND NOT new.deleted;
    INSERT INTO message_cjk (rowid, text)
        SELECT id, new.text FROM message_search_ids
        WHERE room = new.room AND seq = new.seq AND NOT new.deleted
        AND new.text GLOB '*[぀-ヿ㐀-䶿一-鿿가-힯豈-﫿]*';
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF text, deleted ON messages BEGIN
    DELETE FROM message_words WHERE rowid =
        (SELECT id FROM message_search_ids WHERE room = old.room AND seq = old.seq);
    DELETE FROM message_cjk WHERE rowid =
        (SELECT id FROM message_search_ids WHERE room = old.room AND seq = old.seq);
    INSERT INTO message_words (rowid, text)
        SELECT id, new.text FROM message_search_ids
        WHERE room = new.room AND seq = new.seq AND NOT new.deleted;
    INSERT INTO message_cjk (rowid, text)
        SELECT id, new.text FROM message_search_ids
        WHERE room = new.room AND seq = new.seq AND NOT new.deleted
        AND new.text GLOB '*[぀-ヿ㐀-䶿一-鿿가-힯豈-﫿]*';
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_words WHERE rowid =
        (SELECT id FROM message_search_ids WHERE room = old.room AND seq = old.seq);
    DELETE FROM message_cjk WHERE rowid =
        (SELECT id FROM message_search_ids WHERE room = old.room AND seq = old.seq);
    DELETE FROM message_search_ids WHERE room = old.room AND seq = old.seq;
END;

-- Uploaded files: bytes in the file store under `storage_key`, facts here.
-- `attached_seq` is the message that carries the file (NULL until a send
-- claims it; unattached uploads are erased after 24 h).
CREATE TABLE files (
    id              TEXT PRIMARY KEY NOT NULL,
    room            TEXT NOT NULL REFERENCES rooms (name),
    uploader_id     TEXT NOT NULL,
    name            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    content_type    TEXT NOT NULL,
    width           INTEGER,
    height          INTEGER,
    storage_key     TEXT NOT NULL,
    -- Unix milliseconds.
    created_at      INTEGER NOT NULL,
    attached_seq    INTEGER
) WITHOUT ROWID;
CREATE INDEX files_unattached ON files (created_at) WHERE attached_seq IS NULL;
CREATE INDEX files_attached ON files (room, attached_seq) WHERE attached_seq IS NOT NULL;
