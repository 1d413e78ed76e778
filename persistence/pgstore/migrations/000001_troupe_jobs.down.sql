DROP TABLE IF EXISTS troupe_jobs;
DROP FUNCTION IF EXISTS troupe_jobs_notify();
