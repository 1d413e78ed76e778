-- Jobs: one row per job, the whole snapshot plus the scale-out bookkeeping
-- (which node runs it, until when its lease holds, whether a cancel was asked).
-- Every statement is unqualified: the migration runs with search_path set to
-- the store's schema, so several schemas can live in one database.

CREATE TABLE troupe_jobs (
    id               uuid        PRIMARY KEY,
    status           text        NOT NULL
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'canceled')),
    type             text        NOT NULL,
    payload          bytea,
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL CHECK (max_attempts >= 1),
    last_error       text        NOT NULL DEFAULT '',
    -- created_at orders every listing; a job without one is stored as
    -- -infinity so that it sorts first, as the zero time does in Go.
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz,
    run_at           timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    owner_node       text,
    lease_expires_at timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false
);

-- Claiming: pending jobs in the order they became ready. A job with no run_at
-- is ready since it was created.
CREATE INDEX troupe_jobs_claim_idx
    ON troupe_jobs ((COALESCE(run_at, created_at)), created_at, id)
    WHERE status = 'pending';

-- Listing, oldest first, with and without filters.
CREATE INDEX troupe_jobs_created_idx ON troupe_jobs (created_at, id);
CREATE INDEX troupe_jobs_status_created_idx ON troupe_jobs (status, created_at, id);
CREATE INDEX troupe_jobs_type_status_created_idx ON troupe_jobs (type, status, created_at, id);

-- Rescuing: running jobs by lease expiry.
CREATE INDEX troupe_jobs_lease_idx
    ON troupe_jobs (lease_expires_at)
    WHERE status = 'running';

-- troupe_jobs_notify tells listening nodes about work, once per statement:
-- a "jobs_available" notice when the statement inserted pending jobs or made
-- jobs pending again, with the earliest time one of them may run when that is
-- still in the future; and a "cancel_requested" notice per running job whose
-- cancel was just asked for, naming the node that runs it.
CREATE FUNCTION troupe_jobs_notify() RETURNS trigger
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

CREATE TRIGGER troupe_jobs_notify_insert
    AFTER INSERT ON troupe_jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION troupe_jobs_notify();

CREATE TRIGGER troupe_jobs_notify_update
    AFTER UPDATE ON troupe_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION troupe_jobs_notify();
