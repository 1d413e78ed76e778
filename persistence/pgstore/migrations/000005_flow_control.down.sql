-- Back to 000004: jobs forget their keys, queues their flow settings.
DROP FUNCTION IF EXISTS troupe_flow_claim(text, integer, bigint, text[], integer[], text[], text[]);
DROP FUNCTION IF EXISTS troupe_flow_take(troupe_queues, text, uuid, text, bigint, timestamptz);
DROP FUNCTION IF EXISTS troupe_flow_key_gate(troupe_queues, text, uuid, timestamptz);
DROP FUNCTION IF EXISTS troupe_flow_head(text, text);
DROP FUNCTION IF EXISTS troupe_flow_start(uuid[], text, bigint);
DROP FUNCTION IF EXISTS troupe_refill(double precision, timestamptz, timestamptz, integer, bigint, integer);
DROP TABLE IF EXISTS troupe_key_buckets;
ALTER TABLE troupe_queues
    DROP COLUMN IF EXISTS flow,
    DROP COLUMN IF EXISTS flow_limit,
    DROP COLUMN IF EXISTS rate_count,
    DROP COLUMN IF EXISTS rate_per_ns,
    DROP COLUMN IF EXISTS rate_burst,
    DROP COLUMN IF EXISTS key_limits,
    DROP COLUMN IF EXISTS key_limit,
    DROP COLUMN IF EXISTS key_rate_count,
    DROP COLUMN IF EXISTS key_rate_per_ns,
    DROP COLUMN IF EXISTS key_rate_burst,
    DROP COLUMN IF EXISTS ordered,
    DROP COLUMN IF EXISTS fair,
    DROP COLUMN IF EXISTS tokens,
    DROP COLUMN IF EXISTS refilled_at,
    DROP COLUMN IF EXISTS fair_cursor;
DROP INDEX IF EXISTS troupe_jobs_key_idx;
DROP INDEX IF EXISTS troupe_jobs_key_pending_idx;
DROP INDEX IF EXISTS troupe_jobs_key_order_idx;
DROP INDEX IF EXISTS troupe_jobs_key_holders_idx;
ALTER TABLE troupe_jobs DROP COLUMN IF EXISTS key;

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
