-- Rooms hold the last sequence number handed out, so that appending to a room
-- reads and bumps one row inside the storing transaction.
CREATE TABLE rooms (
    name        TEXT PRIMARY KEY NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE messages (
    room        TEXT NOT NULL REFERENCES rooms (name),
    seq         INTEGER NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL,
    client_id   TEXT,
    client_ip   TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX messages_room_client_id ON messages (room, client_id)
    WHERE client_id IS NOT NULL;

INSERT INTO rooms (name, last_seq, created_at)
VALUES ('general', 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
