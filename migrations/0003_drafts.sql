-- Drafts the engine produced, and what the user accepted (accepted text becomes history).
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
);
CREATE INDEX drafts_profile_task ON drafts (profile_id, task);
