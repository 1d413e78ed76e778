// Package pgstore is the scale-out domain.Store on PostgreSQL: several Troupe
// nodes share one database, and each attempt of a job runs on exactly one of
// them.
//
// Besides the Store port it offers the primitives a scale-out runtime needs:
// ClaimJobs hands ready jobs to a node under a lease (FOR UPDATE SKIP LOCKED,
// so claimers never wait on one another), RenewLeases keeps them, UpdateOwned
// records an attempt's outcome only while the node still owns the job,
// RescueExpired returns the jobs of a dead node to the queue, CancelJob
// cancels across nodes, and Watch delivers the LISTEN/NOTIFY wake-ups.
//
// Clocks: a job's snapshot carries the times its writer set (Create, Update
// and UpdateOwned store them as given). Everything the store decides on its
// own — claims, leases, rescues, cancels, promotions of scheduled jobs —
// uses the database clock, now() in SQL, so nodes whose clocks disagree
// still agree on leases and on when a job falls due. A pending job is
// claimed once its run_at has passed on the database clock (one without a
// run_at at once); keep nodes' clocks in sync (NTP) so that whether a
// submission or a retry is scheduled or pending, and a holder's unique_for,
// are not shifted by their skew.
//
// Queues: every queue a job was stored in has a row in troupe_queues, which
// also keeps whether it is paused. A claim skips paused queues, caps each
// queue by the room the node has for it and takes turns across queues;
// within one, jobs go by priority, run_at and ID.
//
// Retention: DeleteFinished deletes a bounded batch of the oldest jobs
// finished in one status along an index on (status, finished_at), skipping
// rows that other nodes hold, so every node may prune at once. Schedules
// live in troupe_schedules; their slots' jobs meet on the unique key index,
// so the table needs no coordination beyond RecordScheduleRun's
// never-backwards update.
//
// The schema is created by golang-migrate migrations embedded in the binary,
// run by Open unless Options.SkipMigrations is set.
package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/troupe-go/troupe/domain"
)

// ErrLeaseLost: the job is no longer running on the node that tried to
// change it, because its lease expired and another node rescued it, or it
// ended otherwise. The node must drop its result: the job's stored state wins.
var ErrLeaseLost = domain.ErrLeaseLost

// Defaults of Options.
const (
	// SchemaDefault is the schema used when Options.Schema is empty.
	SchemaDefault = "public"
	// MaxConnLifetimeDefault is pgxpool's own default.
	MaxConnLifetimeDefault = time.Hour
	// MaxConnIdleTimeDefault is pgxpool's own default.
	MaxConnIdleTimeDefault = 30 * time.Minute
)

// maxIdentifierLength is PostgreSQL's limit on names (NAMEDATALEN - 1).
const maxIdentifierLength = 63

// Options configure a Store. The zero value of each field means its default.
type Options struct {
	// URL is the PostgreSQL connection string (postgres://... or key=value
	// form). Required: there is no default.
	URL string
	// Schema holds the store's tables; every connection's search_path is set
	// to it, so several stores (or test runs) can share one database.
	// Defaults to "public".
	Schema string
	// MaxConns caps the pool's connections. Defaults to pgxpool's default,
	// the larger of 4 and the number of CPUs, or pool_max_conns in URL.
	MaxConns int32
	// MinConns keeps this many connections open when idle. Defaults to 0, or
	// pool_min_conns in URL.
	MinConns int32
	// MaxConnLifetime closes a connection this long after it was opened, so
	// that load spreads again after a failover. Defaults to 1h.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime closes a connection idle this long. Defaults to 30m.
	MaxConnIdleTime time.Duration
	// SkipMigrations leaves the schema as it is, for deployments that migrate
	// ahead of time with Migrate. Defaults to false: Open migrates up.
	SkipMigrations bool
	// Logger receives the store's few logs (migrations, listener reconnects,
	// rescues). Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	o.Schema = cmp.Or(o.Schema, SchemaDefault)
	o.MaxConnLifetime = cmp.Or(o.MaxConnLifetime, MaxConnLifetimeDefault)
	o.MaxConnIdleTime = cmp.Or(o.MaxConnIdleTime, MaxConnIdleTimeDefault)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports the first field out of bounds as an *OptionsError,
// which wraps domain.ErrInvalid. It expects options filled by
// WithDefaults; Open and Migrate call it.
func (o Options) Validate() error {
	bad := func(field string, value any, reason string, args ...any) error {
		return &OptionsError{Field: field, Value: value, Reason: fmt.Sprintf(reason, args...)}
	}
	switch {
	case o.URL == "":
		// The URL may hold a password: never shown.
		return bad("URL", nil, "is required")
	case len(o.Schema) > maxIdentifierLength:
		return bad("Schema", nil, "is %d bytes, more than %d", len(o.Schema), maxIdentifierLength)
	case o.MaxConns < 0:
		return bad("MaxConns", o.MaxConns, "must not be negative, got %d", o.MaxConns)
	case o.MinConns < 0:
		return bad("MinConns", o.MinConns, "must not be negative, got %d", o.MinConns)
	case o.MaxConns > 0 && o.MinConns > o.MaxConns:
		return bad("MinConns", o.MinConns, "(%d) must not exceed Options.MaxConns (%d)", o.MinConns, o.MaxConns)
	case o.MaxConnLifetime < 0, o.MaxConnIdleTime < 0:
		return bad("MaxConnLifetime", nil, "and MaxConnIdleTime must not be negative")
	}
	return nil
}

// OptionsError is a field of Options out of bounds, as Options.Validate
// reports it. It names the Go field, so that a program that builds Options
// from options of its own can name its own option instead.
type OptionsError struct {
	// Field is the name of the Options field, such as "URL".
	Field string
	// Value is the field's value, or nil when it is missing or not shown.
	Value any
	// Reason says what is wrong.
	Reason string
}

// Error names the field and says what is wrong.
func (e *OptionsError) Error() string {
	return fmt.Sprintf("%v: pgstore: Options.%s %s", domain.ErrInvalid, e.Field, e.Reason)
}

// Unwrap makes an OptionsError a domain.ErrInvalid.
func (e *OptionsError) Unwrap() error { return domain.ErrInvalid }

// Store is the PostgreSQL domain.Store plus the scale-out primitives. It is
// safe for concurrent use. Create it with Open.
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	channel string
	logger  *slog.Logger

	// mu guards closed and listeners' registration, so that Close waits for
	// every Watch that started.
	mu        sync.Mutex
	closed    atomic.Bool
	done      chan struct{}
	listeners sync.WaitGroup

	// owned batches concurrent UpdateOwned calls.
	owned ownedUpdates
	// queueNames are the queues known to be in troupe_queues.
	queueNames queueNames
	// flowOn says whether some queue had flow settings at the last claim
	// (true until the first one looked): a claim then serves those
	// queues first (troupe_flow_claim), and otherwise only runs the plain
	// statement, which leaves them alone.
	flowOn atomic.Bool
}

var (
	_ domain.Store      = (*Store)(nil)
	_ domain.RequestLog = (*Store)(nil)
)

// Open connects to PostgreSQL, migrates the schema up (unless
// Options.SkipMigrations) and checks that the database answers. Invalid
// options give an error wrapping domain.ErrInvalid.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg, err := poolConfig(opts)
	if err != nil {
		return nil, err
	}
	if !opts.SkipMigrations {
		if err := migrateConfig(ctx, cfg.ConnConfig, opts.Schema, MigrationUp, opts.Logger); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open pool: %w", err)
	}
	s := &Store{
		pool:    pool,
		schema:  opts.Schema,
		channel: notifyChannel(opts.Schema),
		logger:  opts.Logger.With("component", "pgstore", "schema", opts.Schema),
		done:    make(chan struct{}),
	}
	s.flowOn.Store(true)
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.warnWithoutAutovacuum(ctx)
	return s, nil
}

// warnWithoutAutovacuum warns when the server runs without autovacuum:
// every attempt updates its job twice and the pruner deletes finished
// ones, so without vacuuming the dead rows pile up in the claim index and
// each claim walks further over them; throughput falls by an order of
// magnitude within minutes under steady load.
func (s *Store) warnWithoutAutovacuum(ctx context.Context) {
	var on bool
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('autovacuum')::boolean`).Scan(&on); err != nil || on {
		return
	}
	s.logger.Warn("PostgreSQL runs with autovacuum off: dead rows will slow claims down more and more; turn it on (its default) or vacuum troupe_jobs often")
}

// poolConfig turns options into a pgxpool configuration whose connections
// all work in the store's schema.
func poolConfig(opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// The error may quote the URL and its password; keep only its kind.
		return nil, fmt.Errorf("%w: pgstore: Options.URL does not parse", domain.ErrInvalid)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	cfg.MaxConnLifetime = opts.MaxConnLifetime
	cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	// Every statement of the store is short. JIT compiling one costs far
	// more than running it, and the claim, whose LIMITs per queue the
	// planner cannot size, is costed high enough to trigger it.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	// A claim must walk the claim index in order and stop after a few
	// rows. Where troupe_jobs has no statistics yet (a new table, or one
	// grown since its last ANALYZE) the planner guesses that a queue holds
	// a pending job or two, and may then fetch them all with a bitmap scan
	// and sort them: every pending job of the queue, on every claim. No
	// statement of the store needs a bitmap scan.
	cfg.ConnConfig.RuntimeParams["enable_bitmapscan"] = "off"
	return cfg, nil
}

// Schema returns the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Ping implements domain.Store: it succeeds when the database answers and
// accepts writes (it is not a read-only standby).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	var writable bool
	err := s.pool.QueryRow(ctx,
		`SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'`).Scan(&writable)
	if err != nil {
		return fmt.Errorf("pgstore: ping: %w", mapError(err))
	}
	if !writable {
		return errors.New("pgstore: ping: the database is read-only")
	}
	return nil
}

// Flush implements domain.Store. It does nothing: every method returns only
// after PostgreSQL committed its change, and a commit is durable.
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return domain.ErrClosed
	}
	return nil
}

// Close implements domain.Store. It ends every Watch, waits for them and
// closes the pool once the queries in flight return. Closing twice is
// harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	close(s.done)
	s.mu.Unlock()
	s.listeners.Wait()
	s.pool.Close()
	return nil
}

// mapError turns pgx and PostgreSQL errors into the domain's sentinels, so
// that callers only ever test with errors.Is: no row → domain.ErrNotFound,
// a unique violation → domain.ErrAlreadyExists, a check violation →
// domain.ErrInvalid, a closed pool → domain.ErrClosed. The PostgreSQL error
// stays in the chain next to the sentinel. Other errors pass unchanged.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return domain.ErrClosed
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("%w (%w)", domain.ErrAlreadyExists, err)
		case pgErr.Code == "23514", pgErr.Code == "23502", // check_violation, not_null_violation
			pgErr.Code == "22003": // numeric_value_out_of_range
			return fmt.Errorf("%w (%w)", domain.ErrInvalid, err)
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, cannot connect now
			pgErr.Code == "53300": // too many connections
			return fmt.Errorf("%w (%w)", domain.ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // the caller's own deadline, not the database's state
	}
	// A database out of reach: the connection failed or broke. Callers
	// (and HTTP clients, as 503) may try again.
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", domain.ErrUnavailable, err)
	}
	return err
}
