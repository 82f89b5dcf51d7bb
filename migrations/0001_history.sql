-- Profiles, their writing history (with full-text search) and the models the user added.
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'eval', 'corpus')),
    created_at TEXT NOT NULL
);

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
CREATE INDEX writings_profile_task ON writings (profile_id, task);

-- Inputs are a JSON object; FTS indexes the concatenation of its values.
CREATE VIRTUAL TABLE writings_fts USING fts5 (inputs, output, tokenize = 'unicode61');
CREATE TRIGGER writings_fts_insert AFTER INSERT ON writings BEGIN
    INSERT INTO writings_fts (rowid, inputs, output)
    VALUES (new.id, (SELECT group_concat(value, ' ') FROM json_each(new.inputs)), new.output);
END;
CREATE TRIGGER writings_fts_delete AFTER DELETE ON writings BEGIN
    DELETE FROM writings_fts WHERE rowid = old.id;
END;
CREATE TRIGGER writings_fts_update AFTER UPDATE OF inputs, output ON writings BEGIN
    UPDATE writings_fts
    SET inputs = (SELECT group_concat(value, ' ') FROM json_each(new.inputs)), output = new.output
    WHERE rowid = new.id;
END;

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    architecture TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    added_at TEXT NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
