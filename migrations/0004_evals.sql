-- LaMP / LongLaMP evaluation runs and their per-question results.
CREATE TABLE eval_runs (
    id INTEGER PRIMARY KEY,
    data_dir TEXT NOT NULL,
    task TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    summary TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
);

CREATE TABLE eval_results (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    user TEXT NOT NULL,
    method TEXT NOT NULL,
    prediction TEXT NOT NULL,
    gold TEXT NOT NULL,
    rouge1 REAL NOT NULL,
    rougeL REAL NOT NULL,
    UNIQUE (run_id, question_id, method)
);
