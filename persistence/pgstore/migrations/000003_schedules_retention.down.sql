-- Back to 000002: schedules are forgotten; their jobs stay, as any job.
DROP TABLE IF EXISTS troupe_schedules;
DROP INDEX IF EXISTS troupe_jobs_schedule_idx;
DROP INDEX IF EXISTS troupe_jobs_finished_idx;
ALTER TABLE troupe_jobs DROP COLUMN IF EXISTS schedule;
