-- Rooms hold the last sequence number handed out: appending to a room locks
-- and bumps its row inside the storing transaction, which makes seq gapless
-- and serialises concurrent writers to one room across replicas.
CREATE TABLE rooms (
    name        TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    room        TEXT NOT NULL REFERENCES rooms (name),
    seq         BIGINT NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL,
    client_id   TEXT,
    client_ip   TEXT NOT NULL,
    sent_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (room, seq)
);

CREATE UNIQUE INDEX messages_room_client_id ON messages (room, client_id)
    WHERE client_id IS NOT NULL;

INSERT INTO rooms (name) VALUES ('general');
