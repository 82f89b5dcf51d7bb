-- Trained LoRA adapters and the training runs that produce them.
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
-- At most one active adapter per (profile, task, kind); TAM adapters have no profile.
CREATE UNIQUE INDEX adapters_one_active
    ON adapters (ifnull(profile_id, 0), task, kind) WHERE active = 1;

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
