-- Room events (DESIGN §5b), reading state (§5c) and room topics (§5a).
--
-- A room's seq numbers its events: a new message takes the next seq in
-- `messages`, every change to one (edit, deletion, reaction) takes the next
-- seq in `room_events`. Both come from the same `rooms.last_seq` counter,
-- bumped in the storing transaction, so the seq stays gapless over events.

-- The current state of each message; the events below say how it got there.
ALTER TABLE messages ADD COLUMN edited_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN reply_to BIGINT;
-- JSON array of the user ids the text mentions; NULL when it mentions none.
ALTER TABLE messages ADD COLUMN mentions TEXT;
-- JSON array of the attached files' shapes (§5d); NULL when none.
ALTER TABLE messages ADD COLUMN files TEXT;

CREATE TABLE room_events (
    room        TEXT NOT NULL REFERENCES rooms (name),
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('edit', 'delete', 'reaction')),
    -- The message the event changes.
    target      BIGINT NOT NULL,
    -- Who made the change.
    user_id     TEXT,
    -- edit: the new text ('' once the message is deleted) and its mentions.
    text        TEXT,
    mentions    TEXT,
    -- reaction: which emoji, added (true) or taken back (false).
    emoji       TEXT,
    added       BOOLEAN,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (room, seq)
);
CREATE INDEX room_events_target ON room_events (room, target);

-- Who reacted with what: one row per (message, emoji, user).
CREATE TABLE reactions (
    room        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    emoji       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (room, seq, emoji, user_id),
    FOREIGN KEY (room, seq) REFERENCES messages (room, seq)
);

-- How far each user has read each room (an absent row reads as 0).
CREATE TABLE read_markers (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room        TEXT NOT NULL REFERENCES rooms (name),
    read_seq    BIGINT NOT NULL,
    PRIMARY KEY (user_id, room)
);

ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';

-- A direct room (§5d) is a private room whose members are fixed; its key
-- is the sorted member ids, so one set of people has one direct room.
ALTER TABLE rooms ADD COLUMN direct_key TEXT;
CREATE UNIQUE INDEX rooms_direct_key ON rooms (direct_key) WHERE direct_key IS NOT NULL;
