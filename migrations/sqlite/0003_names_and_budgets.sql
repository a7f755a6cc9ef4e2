-- umbra relay schema, version 3 (SQLite). Must agree with
-- migrations/postgres/0003_names_and_budgets.sql.
--
-- released_names: a username given up by a rename or an account deletion,
-- and when. Until the quarantine (--name-quarantine-days) has passed nobody
-- may register or rename to it, so a contact who knew the old holder by
-- that name is not silently handed to a newcomer. No account id is kept:
-- the row says only that the name was in use until then.
CREATE TABLE released_names (
    username    TEXT PRIMARY KEY NOT NULL,
    released_at INTEGER NOT NULL CHECK (released_at >= 0)
);
CREATE INDEX released_names_time ON released_names (released_at);

-- sender_budgets: envelope bytes one authenticated account has had queued
-- in one budget window (window_start = start of the window, Unix seconds),
-- summed over every recipient. Never joined to messages and holding no
-- recipient, so it cannot say who sent which queued envelope; old windows
-- are purged with expired messages.
CREATE TABLE sender_budgets (
    account_id   BLOB NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    window_start INTEGER NOT NULL CHECK (window_start >= 0),
    bytes        INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (account_id, window_start)
);
