-- One-row INSERT per transaction (pgbench runs each script as one
-- transaction in autocommit): the per-commit limit that group commit is
-- measured against. 64 characters of text, like `palaver-bench send`.
INSERT INTO messages (room, author, text)
VALUES ('bench-0', 'bench', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');
