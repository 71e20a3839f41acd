-- The same seed must give the same artifact. A table bigger than a quarter
-- of shared_buffers is read from wherever another scan of it last was
-- (synchronized scans), so the row order, the binning sample and the model
-- changed between runs; training reads its source from the start.
ALTER FUNCTION mlpipe._fit(text, text, text, text[], jsonb, bytea) SET synchronize_seqscans = off;
