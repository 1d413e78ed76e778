-- Periodic jobs (schedules) and retention. Like 000001, every statement is
-- unqualified: the migration runs with search_path set to the store's schema.

-- The schedule that submitted a job; NULL for a job submitted otherwise.
-- Byte order, as for queues: a name is an identifier.
ALTER TABLE troupe_jobs ADD COLUMN schedule text COLLATE "C";

-- Retention: "finished before T in status S", oldest first, is a range of
-- this index however many jobs the table holds. Only finished jobs are in
-- it, so it costs nothing to jobs in flight; the pruner's statement repeats
-- the predicate so that the planner may use the index with status as a
-- parameter.
CREATE INDEX troupe_jobs_finished_idx
    ON troupe_jobs (status, finished_at)
    WHERE status IN ('completed', 'failed', 'canceled');

-- Listing a schedule's jobs (GET /jobs?schedule=), oldest first. Jobs
-- without a schedule, most of them, stay out of it.
CREATE INDEX troupe_jobs_schedule_idx
    ON troupe_jobs (schedule, created_at, id)
    WHERE schedule IS NOT NULL;

-- Schedules: the definition as the caller gave it (empty strings and zeros
-- mean the defaults, resolved by the runtime), and the run fields the
-- runtime keeps. Durations are nanoseconds, as in troupe_jobs.
CREATE TABLE troupe_schedules (
    name             text        COLLATE "C" PRIMARY KEY,
    cron             text        NOT NULL,
    timezone         text        NOT NULL DEFAULT '',
    catch_up         text        NOT NULL DEFAULT '',
    paused           boolean     NOT NULL DEFAULT false,
    source           text        NOT NULL DEFAULT '',
    job_type         text        NOT NULL,
    job_payload      bytea,
    job_queue        text        COLLATE "C" NOT NULL DEFAULT '',
    job_priority     integer     NOT NULL DEFAULT 0,
    job_max_attempts integer     NOT NULL DEFAULT 0,
    job_timeout_ns   bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz,
    updated_at       timestamptz,
    last_slot        timestamptz,
    last_run_at      timestamptz,
    last_job_id      uuid
);
