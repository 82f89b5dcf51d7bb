-- `cope eval` keeps its runs in files (results.json, predictions.jsonl: resumable, mergeable,
-- shareable); the eval tables of 0004 were never used.
DROP TABLE eval_results;
DROP TABLE eval_runs;
