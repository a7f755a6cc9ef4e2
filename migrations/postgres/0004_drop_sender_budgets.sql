-- umbra relay schema, version 4 (PostgreSQL). Must agree with
-- migrations/sqlite/0004_drop_sender_budgets.sql.
--
-- sender_budgets is gone: its per-sender byte total was written in the same
-- transaction as the messages it charged, so the transaction id (PostgreSQL
-- xmin, the WAL, backups; SQLite's -wal file) tied a sender to the queued
-- messages of that send, the link sealed sender exists to avoid. The relay
-- keeps the hourly sender budget in each node's memory instead
-- (server/src/sender_budget.rs); the totals recorded here are discarded.
DROP TABLE IF EXISTS sender_budgets;
