-- Scheduling, priorities, named queues, unique keys, timeouts and
-- idempotency records. Like 000001, every statement is unqualified: the
-- migration runs with search_path set to the store's schema.

-- A job waiting for a future run_at is 'scheduled'.
ALTER TABLE troupe_jobs DROP CONSTRAINT troupe_jobs_status_check;
ALTER TABLE troupe_jobs ADD CONSTRAINT troupe_jobs_status_check
    CHECK (status IN ('scheduled', 'pending', 'running', 'completed', 'failed', 'canceled'));

-- Durations are nanoseconds (a Go time.Duration), so they read back exactly.
-- unique_held says the row holds its unique_key: see troupe_jobs_unique_key_idx.
-- Queue names and keys compare byte by byte (COLLATE "C"): they are
-- identifiers, not text in a language, and the indexes that lead with them
-- take every insert and claim; a language's collation would cost a library
-- call per comparison.
ALTER TABLE troupe_jobs
    ADD COLUMN queue         text     COLLATE "C" NOT NULL DEFAULT 'default',
    ADD COLUMN priority      smallint NOT NULL DEFAULT 5 CONSTRAINT troupe_jobs_priority_check CHECK (priority BETWEEN 1 AND 9),
    ADD COLUMN unique_key    text     COLLATE "C",
    ADD COLUMN unique_for_ns bigint   NOT NULL DEFAULT 0 CONSTRAINT troupe_jobs_unique_for_check CHECK (unique_for_ns >= 0),
    ADD COLUMN unique_held   boolean  NOT NULL DEFAULT false,
    ADD COLUMN timeout_ns    bigint   NOT NULL DEFAULT 0 CONSTRAINT troupe_jobs_timeout_check CHECK (timeout_ns >= 0);

-- run_at is always set now: an unfinished job without one was due since it
-- was created. A pending job whose run_at is still ahead was waiting out a
-- retry's backoff: that is what 'scheduled' means now.
UPDATE troupe_jobs SET run_at = created_at
 WHERE status IN ('pending', 'running') AND run_at IS NULL;
UPDATE troupe_jobs SET status = 'scheduled'
 WHERE status = 'pending' AND run_at > now();

-- Claiming: within a queue, by priority, then run_at, then submission (id).
DROP INDEX troupe_jobs_claim_idx;
CREATE INDEX troupe_jobs_claim_idx
    ON troupe_jobs (queue, priority, run_at, id)
    WHERE status = 'pending';

-- Promoting: scheduled jobs by run_at; queue is included so that counting
-- them per queue reads the index alone.
CREATE INDEX troupe_jobs_scheduled_idx
    ON troupe_jobs (run_at, id) INCLUDE (queue)
    WHERE status = 'scheduled';

-- Uniqueness: at most one row holds a key. A row holds its key from its
-- insert until an insert with the same key finds it finished more than
-- unique_for ago and releases it (or until it is deleted). That rule is
-- time-dependent, so no index predicate can state it; the flag turns it
-- into one that the index enforces against every writer on every node.
CREATE UNIQUE INDEX troupe_jobs_unique_key_idx
    ON troupe_jobs (unique_key)
    WHERE unique_held;

-- Queues: a row per queue ever used, and whether it is paused. The claim
-- joins it, so a pause takes effect on every node at once.
CREATE TABLE troupe_queues (
    name   text    COLLATE "C" PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false
);
INSERT INTO troupe_queues (name) SELECT DISTINCT queue FROM troupe_jobs;

-- Idempotency records (domain.RequestLog): the first response to a request
-- made with an Idempotency-Key, per caller.
CREATE TABLE troupe_requests (
    scope       text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    done        boolean     NOT NULL DEFAULT false,
    status      integer     NOT NULL DEFAULT 0,
    body        bytea,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX troupe_requests_expires_idx ON troupe_requests (expires_at);

-- troupe_jobs_notify tells listening nodes about work, once per statement:
-- a "jobs_available" notice when the statement inserted pending jobs due now
-- or made jobs pending (a promotion, a retry, a rescue); another, carrying
-- the earliest run_at, when it inserted or made scheduled jobs (or pending
-- ones due only later), so that nodes set a timer to promote them then (at
-- once when that time has passed); and a "cancel_requested" notice per
-- running job whose cancel was just asked for, naming the node that runs it.
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
    next_at  timestamptz;
    c        record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) FILTER (WHERE n.status = 'pending' AND (n.run_at IS NULL OR n.run_at <= now())),
               min(n.run_at) FILTER (WHERE n.status = 'scheduled' OR n.run_at > now())
          INTO ready, next_at
          FROM new_rows n
         WHERE n.status IN ('pending', 'scheduled');
    ELSE
        SELECT count(*) FILTER (WHERE n.status = 'pending' AND (n.run_at IS NULL OR n.run_at <= now())),
               min(n.run_at) FILTER (WHERE n.status = 'scheduled' OR n.run_at > now())
          INTO ready, next_at
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id
         WHERE n.status IN ('pending', 'scheduled')
           AND (o.status <> n.status OR n.run_at IS DISTINCT FROM o.run_at);

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
        PERFORM pg_notify(channel, json_build_object('kind', 'jobs_available')::text);
    END IF;
    IF next_at IS NOT NULL THEN
        PERFORM pg_notify(channel, json_build_object(
            'kind', 'jobs_available',
            'runAt', to_char(next_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text);
    END IF;
    RETURN NULL;
END
$$;

-- troupe_queues_notify announces the jobs of a resumed queue: they wait as
-- pending and no other statement tells the nodes.
CREATE FUNCTION troupe_queues_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    channel text := CASE
                        WHEN octet_length('troupe_jobs.' || TG_TABLE_SCHEMA) <= 63 THEN 'troupe_jobs.' || TG_TABLE_SCHEMA
                        ELSE 'troupe_jobs.' || md5(TG_TABLE_SCHEMA)
                    END;
BEGIN
    PERFORM pg_notify(channel, json_build_object('kind', 'jobs_available')::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER troupe_queues_notify_resume
    AFTER UPDATE OF paused ON troupe_queues
    FOR EACH ROW
    WHEN (OLD.paused AND NOT NEW.paused)
    EXECUTE FUNCTION troupe_queues_notify();
