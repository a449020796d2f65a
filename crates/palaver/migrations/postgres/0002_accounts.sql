-- Accounts and access (DESIGN §5a): users, server-side sessions, private
-- rooms and their members, and the author id of each message.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    -- argon2id PHC string; NULL for users who only sign in through OIDC.
    password_hash   TEXT,
    -- "<issuer> <sub>" of an OIDC-provisioned user.
    oidc_subject    TEXT UNIQUE,
    suspended       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A session is known by the SHA-256 of its cookie value: the database never
-- holds a usable token.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

ALTER TABLE rooms ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'private'));
ALTER TABLE rooms ADD COLUMN owner_id TEXT REFERENCES users (id);

CREATE TABLE room_members (
    room        TEXT NOT NULL REFERENCES rooms (name),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (room, user_id)
);
CREATE INDEX room_members_user_id ON room_members (user_id);

-- NULL for anonymous seed-API messages and for messages older than accounts.
ALTER TABLE messages ADD COLUMN author_id TEXT;
