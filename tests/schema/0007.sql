-- index adapters_one_active
CREATE UNIQUE INDEX adapters_one_active
    ON adapters (ifnull(profile_id, 0), task, kind) WHERE active = 1;
-- index drafts_profile_task
CREATE INDEX drafts_profile_task ON drafts (profile_id, task);
-- index writings_profile_task
CREATE INDEX writings_profile_task ON writings (profile_id, task);
-- table _migrations
CREATE TABLE _migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
-- table adapters
CREATE TABLE adapters (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('tam', 'user')),
    version INTEGER NOT NULL,
    gguf_path TEXT NOT NULL,
    peft_path TEXT,
    base_fingerprint TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at TEXT NOT NULL,
    UNIQUE (profile_id, task, kind, version)
);
-- table drafts
CREATE TABLE drafts (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    inputs TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    text TEXT NOT NULL,
    accepted_text TEXT,
    accepted_at TEXT,
    writing_id INTEGER REFERENCES writings(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
, rejected_at TEXT, adapter_id INTEGER REFERENCES adapters(id) ON DELETE SET NULL);
-- table models
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    architecture TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    added_at TEXT NOT NULL
, hf_dir TEXT);
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
-- table training_runs
CREATE TABLE training_runs (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'skipped')),
    stage TEXT,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT,
    error TEXT,
    history_fingerprint TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
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
