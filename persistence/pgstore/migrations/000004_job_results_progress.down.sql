-- Back to 000003: jobs forget their results and progress.
ALTER TABLE troupe_jobs
    DROP COLUMN IF EXISTS result,
    DROP COLUMN IF EXISTS progress_percent,
    DROP COLUMN IF EXISTS progress_message,
    DROP COLUMN IF EXISTS progress_updated_at;
