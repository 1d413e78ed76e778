-- Back to 000001: scheduled jobs become pending again, with their run_at in
-- the future, which is how 000001 kept a job due later.
DROP TRIGGER IF EXISTS troupe_queues_notify_resume ON troupe_queues;
DROP FUNCTION IF EXISTS troupe_queues_notify();
DROP TABLE IF EXISTS troupe_requests;
DROP TABLE IF EXISTS troupe_queues;

UPDATE troupe_jobs SET status = 'pending' WHERE status = 'scheduled';

DROP INDEX IF EXISTS troupe_jobs_unique_key_idx;
DROP INDEX IF EXISTS troupe_jobs_scheduled_idx;
DROP INDEX IF EXISTS troupe_jobs_claim_idx;
ALTER TABLE troupe_jobs
    DROP COLUMN queue,
    DROP COLUMN priority,
    DROP COLUMN unique_key,
    DROP COLUMN unique_for_ns,
    DROP COLUMN unique_held,
    DROP COLUMN timeout_ns;
ALTER TABLE troupe_jobs DROP CONSTRAINT troupe_jobs_status_check;
ALTER TABLE troupe_jobs ADD CONSTRAINT troupe_jobs_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'canceled'));

CREATE INDEX troupe_jobs_claim_idx
    ON troupe_jobs ((COALESCE(run_at, created_at)), created_at, id)
    WHERE status = 'pending';

CREATE OR REPLACE FUNCTION troupe_jobs_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    -- The channel of this schema; notifyChannel in Go must agree: the schema
    -- after a prefix, or its md5 when that would pass the 63-byte limit on names.
    channel  text := CASE
                         WHEN octet_length('troupe_jobs.' || TG_TABLE_SCHEMA) <= 63 THEN 'troupe_jobs.' || TG_TABLE_SCHEMA
                         ELSE 'troupe_jobs.' || md5(TG_TABLE_SCHEMA)
                     END;
    ready    bigint;
    ready_at timestamptz;
    c        record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*), min(COALESCE(n.run_at, '-infinity'))
          INTO ready, ready_at
          FROM new_rows n
         WHERE n.status = 'pending';
    ELSE
        SELECT count(*), min(COALESCE(n.run_at, '-infinity'))
          INTO ready, ready_at
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id
         WHERE n.status = 'pending'
           AND (o.status <> 'pending' OR n.run_at IS DISTINCT FROM o.run_at);

        FOR c IN
            SELECT n.id, n.owner_node
              FROM new_rows n
              JOIN old_rows o ON o.id = n.id
             WHERE n.status = 'running' AND n.cancel_requested AND NOT o.cancel_requested
        LOOP
            PERFORM pg_notify(channel, json_build_object(
                'kind', 'cancel_requested',
                'jobId', c.id,
                'node', COALESCE(c.owner_node, ''))::text);
        END LOOP;
    END IF;

    IF ready > 0 THEN
        IF ready_at > now() THEN
            PERFORM pg_notify(channel, json_build_object(
                'kind', 'jobs_available',
                'runAt', to_char(ready_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text);
        ELSE
            PERFORM pg_notify(channel, json_build_object('kind', 'jobs_available')::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
