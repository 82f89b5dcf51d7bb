-- What the person did with each draft: accepted as drafted or as edited (accepted_text and
-- accepted_at, from 0003), or rejected (rejected_at); and the adapter version that proposed it.
-- Edited and rejected drafts become preference pairs for the next retrain's DPO.
ALTER TABLE drafts ADD COLUMN rejected_at TEXT;
ALTER TABLE drafts ADD COLUMN adapter_id INTEGER REFERENCES adapters(id) ON DELETE SET NULL;
