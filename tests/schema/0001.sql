-- index writings_profile_task
CREATE INDEX writings_profile_task ON writings (profile_id, task);
-- table _migrations
CREATE TABLE _migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
-- table models
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    architecture TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    added_at TEXT NOT NULL
);
-- table profiles
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'eval', 'corpus')),
    created_at TEXT NOT NULL
);
-- table settings
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- table writings
CREATE TABLE writings (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    inputs TEXT NOT NULL,
    output TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'import' CHECK (origin IN ('import', 'draft')),
    source_path TEXT,
    source_line INTEGER,
    written_at TEXT,
    created_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    UNIQUE (profile_id, task, content_hash)
);
-- table writings_fts
CREATE VIRTUAL TABLE writings_fts USING fts5 (inputs, output, tokenize = 'unicode61');
