-- Search and files (DESIGN §5d).
--
-- Search: a tsvector kept with each message by the database itself (a
-- generated column, so every UPDATE of `text` by an edit or a deletion
-- refreshes it in the same transaction) and a GIN index over it. The
-- 'simple' configuration is language-neutral: it lowercases and splits on
-- the parser's word boundaries, with no stemming and no stop words, so a
-- word is found in every language and script alike. Chinese, Japanese and
-- Korean are written without spaces: palaver_search_text puts a space
-- around each of their characters, so each one is its own token, and a
-- query term in those scripts is searched as a phrase of its characters
-- (substring search, positions checked by the phrase operator).
CREATE FUNCTION palaver_search_text(t TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT regexp_replace(t,
        '([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])',
        ' \1 ', 'g') $$;

ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, palaver_search_text(text))) STORED;
CREATE INDEX messages_search ON messages USING gin (search);

-- Uploaded files: bytes in the file store under `storage_key`, facts here.
-- `attached_seq` is the message that carries the file (NULL until a send
-- claims it; unattached uploads are erased after 24 h).
CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    room            TEXT NOT NULL REFERENCES rooms (name),
    uploader_id     TEXT NOT NULL,
    name            TEXT NOT NULL,
    size            BIGINT NOT NULL,
    content_type    TEXT NOT NULL,
    width           INTEGER,
    height          INTEGER,
    storage_key     TEXT NOT NULL,
    -- Unix milliseconds.
    created_at      BIGINT NOT NULL,
    attached_seq    BIGINT
);
CREATE INDEX files_unattached ON files (created_at) WHERE attached_seq IS NULL;
CREATE INDEX files_attached ON files (room, attached_seq) WHERE attached_seq IS NOT NULL;
