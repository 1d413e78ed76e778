-- Flow control: job keys, queue settings and their rate buckets. Like
-- 000001, every statement is unqualified: the migration runs with
-- search_path set to the store's schema.

-- A job's key (domain.Job.Key); NULL is no key, so that the indexes below
-- never see keyless jobs: a job without a key pays nothing for them.
ALTER TABLE troupe_jobs ADD COLUMN key text COLLATE "C";

-- Listing by key (GET /jobs?key=), oldest first.
CREATE INDEX troupe_jobs_key_idx
    ON troupe_jobs (key, created_at, id)
    WHERE key IS NOT NULL;

-- A key's pending jobs in the queue's order: the claim of a fair queue
-- walks the keys along it (one probe per key) and takes each key's best job.
CREATE INDEX troupe_jobs_key_pending_idx
    ON troupe_jobs (queue, key, priority, run_at, id)
    WHERE status = 'pending' AND key IS NOT NULL;

-- A key's pending jobs in submission order, priority aside: the head of an
-- ordered key.
CREATE INDEX troupe_jobs_key_order_idx
    ON troupe_jobs (queue, key, run_at, id)
    WHERE status = 'pending' AND key IS NOT NULL;

-- A key's holders: its running jobs, and those that started and wait for
-- their next attempt (an ordered key's holders). Few rows per key whatever
-- the key's backlog.
CREATE INDEX troupe_jobs_key_holders_idx
    ON troupe_jobs (queue, key)
    WHERE key IS NOT NULL AND (status = 'running' OR (status IN ('scheduled', 'pending') AND attempts > 0));

-- Queue settings (domain.QueueSettings). flow says the queue has any: the
-- plain claim leaves such queues to troupe_flow_claim. A NULL rate count is
-- no rate; a burst of 0 is the count. Durations are nanoseconds.
-- tokens/refilled_at are the queue's bucket, NULL = full; fair_cursor is
-- the key a fair claim served last ('' = the keyless jobs).
ALTER TABLE troupe_queues
    ADD COLUMN flow            boolean NOT NULL DEFAULT false,
    ADD COLUMN flow_limit      integer NOT NULL DEFAULT 0,
    ADD COLUMN rate_count      integer,
    ADD COLUMN rate_per_ns     bigint,
    ADD COLUMN rate_burst      integer NOT NULL DEFAULT 0,
    ADD COLUMN key_limits      boolean NOT NULL DEFAULT false,
    ADD COLUMN key_limit       integer NOT NULL DEFAULT 0,
    ADD COLUMN key_rate_count  integer,
    ADD COLUMN key_rate_per_ns bigint,
    ADD COLUMN key_rate_burst  integer NOT NULL DEFAULT 0,
    ADD COLUMN ordered         boolean NOT NULL DEFAULT false,
    ADD COLUMN fair            boolean NOT NULL DEFAULT false,
    ADD COLUMN tokens          double precision,
    ADD COLUMN refilled_at     timestamptz,
    ADD COLUMN fair_cursor     text COLLATE "C";

-- Per-key buckets of the queues with a per-key rate; a missing row is a
-- full bucket.
CREATE TABLE troupe_key_buckets (
    queue       text             COLLATE "C" NOT NULL,
    key         text             COLLATE "C" NOT NULL,
    tokens      double precision NOT NULL,
    refilled_at timestamptz      NOT NULL,
    PRIMARY KEY (queue, key)
);

-- troupe_refill is a bucket's tokens at t (domain.Rate.Refill): NULL
-- tokens are a full bucket; a t before refilled_at refills nothing.
CREATE FUNCTION troupe_refill(tokens double precision, refilled_at timestamptz, t timestamptz,
                              cnt integer, per_ns bigint, burst integer)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE
    AS $$
SELECT CASE
           WHEN tokens IS NULL OR refilled_at IS NULL THEN burst::double precision
           ELSE LEAST(burst::double precision,
                      tokens + GREATEST(0, extract(epoch FROM t - refilled_at)::double precision * 1e9) * cnt / per_ns)
       END
$$;

-- troupe_flow_start marks the pending jobs among ids running on node: the
-- plain claim's update.
CREATE FUNCTION troupe_flow_start(ids uuid[], node text, lease_us bigint)
    RETURNS SETOF troupe_jobs
    LANGUAGE sql VOLATILE
    AS $$
UPDATE troupe_jobs AS j
   SET status = 'running',
       attempts = j.attempts + 1,
       started_at = now(),
       updated_at = now(),
       owner_node = node,
       lease_expires_at = now() + lease_us * interval '1 microsecond',
       cancel_requested = false,
       progress_percent = NULL,
       progress_message = NULL,
       progress_updated_at = NULL
 WHERE j.id = ANY(ids) AND j.status = 'pending'
RETURNING j.*
$$;

-- troupe_flow_head is the head of an ordered key: its pending job that
-- already started (waiting for its next attempt), else its earliest.
CREATE FUNCTION troupe_flow_head(q text, k text)
    RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    head uuid;
BEGIN
    SELECT id INTO head FROM troupe_jobs
     WHERE queue = q AND key = k
       AND (status = 'running' OR (status IN ('scheduled', 'pending') AND attempts > 0))
       AND status = 'pending'
     ORDER BY run_at, id
     LIMIT 1;
    IF head IS NULL THEN
        SELECT id INTO head FROM troupe_jobs
         WHERE queue = q AND key = k AND status = 'pending' AND key IS NOT NULL
         ORDER BY run_at, id
         LIMIT 1;
    END IF;
    RETURN head;
END
$$;

-- troupe_flow_key_gate says whether job id of key k may start in queue q
-- now (t): 0 yes; 1 no, nor any other job of k in this claim; 2 not this
-- job (an ordered key's job that is not its head).
CREATE FUNCTION troupe_flow_key_gate(q troupe_queues, k text, id uuid, t timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    running integer;
    retrying boolean;
    b record;
BEGIN
    IF k IS NULL OR NOT q.key_limits THEN
        RETURN 0;
    END IF;
    IF q.ordered OR q.key_limit > 0 THEN
        SELECT count(*) FILTER (WHERE j.status = 'running'), COALESCE(bool_or(j.status = 'scheduled'), false)
          INTO running, retrying
          FROM troupe_jobs AS j
         WHERE j.queue = q.name AND j.key = k
           AND (j.status = 'running' OR (j.status IN ('scheduled', 'pending') AND j.attempts > 0));
        IF running >= q.key_limit THEN
            RETURN 1;
        END IF;
        IF q.ordered THEN
            IF retrying THEN
                RETURN 1;
            END IF;
            IF troupe_flow_head(q.name, k) IS DISTINCT FROM id THEN
                RETURN 2;
            END IF;
        END IF;
    END IF;
    IF q.key_rate_count IS NOT NULL THEN
        SELECT tokens, refilled_at INTO b FROM troupe_key_buckets WHERE queue = q.name AND key = k;
        IF FOUND AND troupe_refill(b.tokens, b.refilled_at, t, q.key_rate_count, q.key_rate_per_ns,
                                   COALESCE(NULLIF(q.key_rate_burst, 0), q.key_rate_count)) < 1 THEN
            RETURN 1;
        END IF;
    END IF;
    RETURN 0;
END
$$;

-- troupe_flow_take starts job id of queue q (key k) and takes a token of
-- the key's bucket; it returns the job, or nothing when it was no longer
-- pending.
CREATE FUNCTION troupe_flow_take(q troupe_queues, k text, id uuid, node text, lease_us bigint, t timestamptz)
    RETURNS SETOF troupe_jobs
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    j troupe_jobs;
    burst integer;
BEGIN
    SELECT * INTO j FROM troupe_flow_start(ARRAY[id], node, lease_us);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF k IS NOT NULL AND q.key_rate_count IS NOT NULL THEN
        burst := COALESCE(NULLIF(q.key_rate_burst, 0), q.key_rate_count);
        INSERT INTO troupe_key_buckets AS b (queue, key, tokens, refilled_at)
        VALUES (q.name, k, burst - 1, t)
        ON CONFLICT (queue, key) DO UPDATE
           SET tokens = troupe_refill(b.tokens, b.refilled_at, t, q.key_rate_count, q.key_rate_per_ns, burst) - 1,
               refilled_at = GREATEST(b.refilled_at, t);
    END IF;
    RETURN NEXT j;
END
$$;

-- troupe_flow_claim claims for node up to lim jobs of the queues with flow
-- settings, enforcing them exactly against every concurrent claimer:
--
--   1. It locks the rows of the queues it may serve, FOR UPDATE SKIP
--      LOCKED: a queue another claimer holds is skipped this time, and no
--      claimer ever waits for another.
--   2. Each statement after that sees every claim committed before the
--      lock was granted (a VOLATILE function's statements each take a new
--      snapshot under READ COMMITTED), and its own starts: running counts
--      and buckets are exact, not estimated.
--   3. Across queues it takes turns as the plain claim does, counting every
--      queue not paused (flow or not), and serves the flow queues' shares;
--      the plain claim then gives the rest to the other queues.
--   4. Per queue: the limit and the bucket bound how many start; keyed
--      settings walk the claim index (or, when fair, the keys round robin
--      from the key served last) and check each key's limit, order and
--      bucket with probes of the key indexes.
--
-- Parameters are those of the plain claim: room_names/rooms cap queues,
-- types and queues filter (NULL = any).
CREATE FUNCTION troupe_flow_claim(node text, lim integer, lease_us bigint,
                                  room_names text[], rooms integer[], types text[], queues text[])
    RETURNS SETOF troupe_jobs
    LANGUAGE plpgsql VOLATILE
    AS $$
DECLARE
    locked   text[];
    sh       record;
    q        troupe_queues;
    c        record;
    j        troupe_jobs;
    t        timestamptz;
    avail    integer;
    taken    integer;
    n        integer;
    gate     integer;
    blocked  text[];
    cur      text;
    nxt      text;
    served   text;
    cand     uuid;
    wraps    integer;
    progress boolean;
    keyless  boolean;
BEGIN
    SELECT array_agg(l.name) INTO locked
      FROM (SELECT tq.name
              FROM troupe_queues AS tq
             WHERE tq.flow AND NOT tq.paused
               AND (queues IS NULL OR tq.name = ANY(queues))
               AND COALESCE(rooms[array_position(room_names, tq.name)], 1) > 0
             ORDER BY tq.name
               FOR UPDATE SKIP LOCKED) AS l;
    IF locked IS NULL THEN
        RETURN;
    END IF;

    FOR sh IN
        WITH r AS MATERIALIZED (
            SELECT tq.name, tq.flow,
                   LEAST(COALESCE(rooms[array_position(room_names, tq.name)], lim), lim) AS room
              FROM troupe_queues AS tq
             WHERE NOT tq.paused
               AND (queues IS NULL OR tq.name = ANY(queues))
               AND (NOT tq.flow OR tq.name = ANY(locked))
        ), ready AS MATERIALIZED (
            SELECT r.name, r.flow,
                   (SELECT count(*)
                      FROM (SELECT 1
                              FROM troupe_jobs AS rj
                             WHERE rj.status = 'pending' AND rj.queue = r.name
                               AND (rj.run_at <= now() OR rj.run_at IS NULL)
                               AND (types IS NULL OR rj.type = ANY(types))
                             ORDER BY rj.priority, rj.run_at, rj.id
                             LIMIT r.room) AS x) AS n
              FROM r
             WHERE r.room > 0
        )
        SELECT o.name, count(*)::integer AS n
          FROM (SELECT ready.name, ready.flow
                  FROM ready CROSS JOIN generate_series(1, ready.n) AS turn(i)
                 ORDER BY turn.i, random()
                 LIMIT lim) AS o
         WHERE o.flow
         GROUP BY o.name
    LOOP
        SELECT * INTO q FROM troupe_queues WHERE name = sh.name;
        t := clock_timestamp();
        avail := sh.n;
        IF q.flow_limit > 0 THEN
            SELECT count(*) INTO n FROM troupe_jobs WHERE status = 'running' AND queue = q.name;
            avail := LEAST(avail, q.flow_limit - n);
        END IF;
        IF q.rate_count IS NOT NULL THEN
            avail := LEAST(avail, floor(troupe_refill(q.tokens, q.refilled_at, t, q.rate_count, q.rate_per_ns,
                                                      COALESCE(NULLIF(q.rate_burst, 0), q.rate_count)))::integer);
        END IF;
        CONTINUE WHEN avail <= 0;
        taken := 0;

        IF NOT q.key_limits AND NOT q.fair THEN
            -- No keys involved: the plain claim's pick, capped.
            RETURN QUERY SELECT * FROM troupe_flow_start(ARRAY(
                SELECT pj.id FROM troupe_jobs AS pj
                 WHERE pj.status = 'pending' AND pj.queue = q.name
                   AND (pj.run_at <= now() OR pj.run_at IS NULL)
                   AND (types IS NULL OR pj.type = ANY(types))
                 ORDER BY pj.priority, pj.run_at, pj.id
                 LIMIT avail
                   FOR UPDATE SKIP LOCKED), node, lease_us);
            GET DIAGNOSTICS taken = ROW_COUNT;
        ELSIF NOT q.fair THEN
            -- The queue's order along the claim index; a key found full is
            -- remembered so that its other jobs cost no probe.
            blocked := '{}';
            FOR c IN
                SELECT pj.id, pj.key
                  FROM troupe_jobs AS pj
                 WHERE pj.status = 'pending' AND pj.queue = q.name
                   AND (pj.run_at <= now() OR pj.run_at IS NULL)
                   AND (types IS NULL OR pj.type = ANY(types))
                 ORDER BY pj.priority, pj.run_at, pj.id
            LOOP
                EXIT WHEN taken >= avail;
                IF c.key IS NOT NULL AND q.key_limits THEN
                    CONTINUE WHEN c.key = ANY(blocked);
                    gate := troupe_flow_key_gate(q, c.key, c.id, t);
                    IF gate = 1 AND cardinality(blocked) < 1000 THEN
                        blocked := blocked || c.key;
                    END IF;
                    CONTINUE WHEN gate <> 0;
                END IF;
                FOR j IN SELECT * FROM troupe_flow_take(q, c.key, c.id, node, lease_us, t) LOOP
                    taken := taken + 1;
                    RETURN NEXT j;
                END LOOP;
            END LOOP;
        ELSE
            -- Fair: one job per key and turn, keys in byte order from the
            -- one served last ('' = the keyless jobs, first), wrapping round;
            -- it stops at a turn that started nothing.
            cur := q.fair_cursor;
            served := NULL;
            wraps := 0;
            progress := false;
            -- The keyless jobs are found along the claim index, past the
            -- keyed ones: looked for again only while some were found.
            keyless := true;
            LOOP
                EXIT WHEN taken >= avail;
                IF cur IS NULL THEN
                    nxt := '';
                ELSE
                    SELECT kj.key INTO nxt FROM troupe_jobs AS kj
                     WHERE kj.status = 'pending' AND kj.key IS NOT NULL AND kj.queue = q.name AND kj.key > cur
                     ORDER BY kj.key
                     LIMIT 1;
                    IF NOT FOUND THEN
                        nxt := NULL;
                    END IF;
                END IF;
                IF nxt IS NULL THEN
                    wraps := wraps + 1;
                    EXIT WHEN wraps >= 2 AND NOT progress;
                    progress := false;
                    cur := NULL;
                    CONTINUE;
                END IF;
                cur := nxt;
                cand := NULL;
                IF nxt = '' AND NOT keyless THEN
                    CONTINUE;
                ELSIF nxt = '' THEN
                    SELECT pj.id INTO cand FROM troupe_jobs AS pj
                     WHERE pj.status = 'pending' AND pj.queue = q.name AND pj.key IS NULL
                       AND (pj.run_at <= now() OR pj.run_at IS NULL)
                       AND (types IS NULL OR pj.type = ANY(types))
                     ORDER BY pj.priority, pj.run_at, pj.id
                     LIMIT 1;
                    keyless := cand IS NOT NULL;
                ELSIF q.ordered THEN
                    cand := troupe_flow_head(q.name, nxt);
                    SELECT pj.id INTO cand FROM troupe_jobs AS pj
                     WHERE pj.id = cand
                       AND (pj.run_at <= now() OR pj.run_at IS NULL)
                       AND (types IS NULL OR pj.type = ANY(types));
                ELSE
                    SELECT pj.id INTO cand FROM troupe_jobs AS pj
                     WHERE pj.status = 'pending' AND pj.key IS NOT NULL AND pj.queue = q.name AND pj.key = nxt
                       AND (pj.run_at <= now() OR pj.run_at IS NULL)
                       AND (types IS NULL OR pj.type = ANY(types))
                     ORDER BY pj.priority, pj.run_at, pj.id
                     LIMIT 1;
                END IF;
                CONTINUE WHEN cand IS NULL;
                IF nxt <> '' AND troupe_flow_key_gate(q, nxt, cand, t) <> 0 THEN
                    CONTINUE;
                END IF;
                FOR j IN SELECT * FROM troupe_flow_take(q, NULLIF(nxt, ''), cand, node, lease_us, t) LOOP
                    taken := taken + 1;
                    progress := true;
                    served := nxt;
                    RETURN NEXT j;
                END LOOP;
            END LOOP;
            IF served IS NOT NULL THEN
                UPDATE troupe_queues SET fair_cursor = served WHERE name = q.name;
            END IF;
        END IF;

        IF taken > 0 AND q.rate_count IS NOT NULL THEN
            UPDATE troupe_queues
               SET tokens = troupe_refill(q.tokens, q.refilled_at, t, q.rate_count, q.rate_per_ns,
                                          COALESCE(NULLIF(q.rate_burst, 0), q.rate_count)) - taken,
                   refilled_at = GREATEST(q.refilled_at, t)
             WHERE name = q.name;
        END IF;
    END LOOP;
END
$$;

-- troupe_jobs_notify, as in 000002, and also a "jobs_available" notice when
-- a job of a queue with a limit or per-key settings stops running, so
-- that the nodes claim the job it let start at once.
-- It reads troupe_queues, so it carries the store's schema as its
-- search_path: a statement of another session (an operator's, with
-- another search_path) on troupe_jobs must find it too.
CREATE OR REPLACE FUNCTION troupe_jobs_notify() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
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
    freed    bigint := 0;
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

        -- A job leaving 'running' in a queue with a limit or per-key
        -- settings lets another start: every node should claim now. The
        -- first test reads the small troupe_queues alone, so queues
        -- without such settings pay nothing more.
        IF EXISTS (SELECT 1 FROM troupe_queues WHERE flow AND (flow_limit > 0 OR key_limits)) THEN
            SELECT count(*)
              INTO freed
              FROM new_rows n
              JOIN old_rows o ON o.id = n.id
             WHERE o.status = 'running' AND n.status <> 'running'
               AND n.queue IN (SELECT name FROM troupe_queues WHERE flow AND (flow_limit > 0 OR key_limits));
        END IF;

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

    IF ready > 0 OR freed > 0 THEN
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
