-- A local Hugging Face folder paired with a GGUF: training then loads it instead of dequantizing.
ALTER TABLE models ADD COLUMN hf_dir TEXT;
