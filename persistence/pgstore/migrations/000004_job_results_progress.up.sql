-- Results and progress. Like 000001, every statement is unqualified: the
-- migration runs with search_path set to the store's schema.

-- result is the JSON text a job ended with, byte for byte: bytea, not
-- jsonb, which would reorder keys, drop duplicates and respace it. NULL is
-- no result.
-- progress_* is what the running (or last) attempt reported; a NULL
-- progress_percent is no report, and the other two are then NULL too.
-- Nullable columns without a default: adding them rewrites nothing.
ALTER TABLE troupe_jobs
    ADD COLUMN result              bytea,
    ADD COLUMN progress_percent    double precision,
    ADD COLUMN progress_message    text,
    ADD COLUMN progress_updated_at timestamptz;
