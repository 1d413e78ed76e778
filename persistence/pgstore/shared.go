package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/troupe-go/troupe/domain"
)

var _ domain.SharedQueue = (*Store)(nil)

// heartbeatSQL extends the lease of one running job of owner $2 and, when
// $4 is true, stores its progress ($5 to $7; a NULL time is the database's
// now), in one statement. Parameters: $1 the job, $3 the lease in
// microseconds. Its one row says whether the job was found and, when it
// was renewed, the lease's new end and whether a cancel was requested; no
// row means no such job. One row is changed, so the statement holds one
// lock at a time and takes part in no lock order (see lockRunningSQL).
//
// Like RenewLeases, it leaves updated_at alone: progress has its own time.
const heartbeatSQL = `
WITH beat AS (
    UPDATE troupe_jobs
       SET lease_expires_at = now() + $3::bigint * interval '1 microsecond',
           progress_percent = CASE WHEN $4::boolean THEN $5::float8 ELSE progress_percent END,
           progress_message = CASE WHEN $4::boolean THEN $6::text ELSE progress_message END,
           progress_updated_at = CASE WHEN $4::boolean THEN COALESCE($7::timestamptz, now()) ELSE progress_updated_at END
     WHERE id = $1 AND owner_node = $2 AND status = 'running'
 RETURNING lease_expires_at, cancel_requested
)
SELECT true, lease_expires_at, cancel_requested FROM beat
UNION ALL
SELECT false, NULL, false FROM troupe_jobs WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM beat)`

// Heartbeat implements domain.SharedQueue. It extends the lease of job id,
// while it runs for owner (a node, or domain.ExternalOwner of an external
// worker's token), to the database's now + lease, and stores progress when
// it is not nil (its UpdatedAt as given, the database's now when zero).
// It returns the lease's new end and whether a cancel of the job was
// requested (CancelJob). A lease that expired but was not rescued yet is
// renewed, as by RenewLeases. A job that exists but no longer runs for
// owner (rescued, finished, or another owner's) gives an error wrapping
// domain.ErrLeaseLost; a job that does not exist, domain.ErrNotFound.
func (s *Store) Heartbeat(ctx context.Context, owner string, id uuid.UUID, lease time.Duration, progress *domain.Progress) (domain.LeaseState, error) {
	if s.closed.Load() {
		return domain.LeaseState{}, domain.ErrClosed
	}
	if owner == "" {
		return domain.LeaseState{}, fmt.Errorf("heartbeat of job %s: %w: owner must not be empty", id, domain.ErrInvalid)
	}
	var (
		percent pgtype.Float8
		message pgtype.Text
		at      pgtype.Timestamptz
	)
	if progress != nil {
		if math.IsNaN(progress.Percent) {
			return domain.LeaseState{}, fmt.Errorf("heartbeat of job %s: %w: progress percent is NaN", id, domain.ErrInvalid)
		}
		percent = pgtype.Float8{Float64: progress.Percent, Valid: true}
		message = pgtype.Text{String: progress.Message, Valid: true}
		at = toTimestamptz(progress.UpdatedAt)
	}
	var (
		found, cancelRequested bool
		expires                pgtype.Timestamptz
	)
	err := s.pool.QueryRow(ctx, heartbeatSQL, id, owner, lease.Microseconds(), progress != nil, percent, message, at).
		Scan(&found, &expires, &cancelRequested)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.LeaseState{}, fmt.Errorf("heartbeat of job %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.LeaseState{}, fmt.Errorf("heartbeat of job %s by %s: %w", id, ownerName(owner), mapError(err))
	}
	if !found {
		return domain.LeaseState{}, fmt.Errorf("heartbeat of job %s by %s: %w", id, ownerName(owner), domain.ErrLeaseLost)
	}
	return domain.LeaseState{ExpiresAt: fromTimestamptz(expires), CancelRequested: cancelRequested}, nil
}

// ownerName names a lease's owner in an error: a node by its name, an
// external worker without its token, which would let whoever reads the
// message (a log, an HTTP answer) act as that worker.
func ownerName(owner string) string {
	if strings.HasPrefix(owner, domain.ExternalOwnerPrefix) {
		return "an external worker"
	}
	return "node " + owner
}
