package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/internal/storeopen"
)

// soakTick is how often the soak submits the jobs that fell due: often
// enough that the rate is smooth, rarely enough that each batch is large.
const soakTick = 50 * time.Millisecond

// SoakParams configures Bencher.Soak.
type SoakParams struct {
	// Duration is how long to submit.
	Duration time.Duration
	// Rate is the jobs submitted per second, in batches.
	Rate float64
	// RetentionCompleted is how long completed jobs are kept; the runtime's
	// pruner deletes them after, as with troupe serve.
	RetentionCompleted time.Duration
	// Sample is how often the store's size is measured.
	Sample time.Duration
	// Out receives a line per sample as it is taken; nil prints none.
	Out io.Writer
}

// SoakSample is one measurement of a soak.
type SoakSample struct {
	// ElapsedSeconds is the time since the first submission.
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	// Submitted and Completed count the jobs so far.
	Submitted int64 `json:"submitted"`
	Completed int64 `json:"completed"`
	// Finished counts the finished jobs the store still holds: about the
	// completion rate times the retention while the pruner keeps up.
	Finished int64 `json:"finished"`
	// DirBytes is the disk space Badger's data directory takes, as du
	// counts it; DirFileBytes the lengths of its files, which count
	// preallocated (sparse) space too.
	DirBytes     *int64 `json:"dirBytes,omitempty"`
	DirFileBytes *int64 `json:"dirFileBytes,omitempty"`
	// Rows is count(*) of troupe_jobs, and TableBytes
	// pg_total_relation_size of it, with its indexes and TOAST (postgres).
	Rows       *int64 `json:"rows,omitempty"`
	TableBytes *int64 `json:"tableBytes,omitempty"`
}

// String is the sample as one line.
func (s SoakSample) String() string {
	line := fmt.Sprintf("soak: %6.0fs  submitted %d  completed %d  kept %d", s.ElapsedSeconds, s.Submitted, s.Completed, s.Finished)
	if s.DirBytes != nil {
		line += fmt.Sprintf("  data dir %s on disk (%d bytes)", humanBytes(*s.DirBytes), *s.DirBytes)
	}
	if s.DirFileBytes != nil {
		line += fmt.Sprintf(", files %s", humanBytes(*s.DirFileBytes))
	}
	if s.Rows != nil {
		line += fmt.Sprintf("  troupe_jobs %d rows", *s.Rows)
	}
	if s.TableBytes != nil {
		line += fmt.Sprintf(", %s (%d bytes)", humanBytes(*s.TableBytes), *s.TableBytes)
	}
	return line
}

// humanBytes shows a size in binary units, to one decimal.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// dirSize is the disk space the regular files under dir take (see
// allocatedBytes), and the sum of their lengths. Files that vanish during
// the walk (Badger deletes value-log and table files as it compacts) are
// skipped.
func dirSize(dir string) (allocated, length int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		allocated += allocatedBytes(info)
		length += info.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return allocated, length, nil
}

// measure fills a sample with the store's size.
type measure func(ctx context.Context, s *SoakSample) error

// badgerMeasure measures Badger's data directory.
func badgerMeasure(dir string) measure {
	return func(_ context.Context, s *SoakSample) error {
		allocated, length, err := dirSize(dir)
		if err != nil {
			return err
		}
		s.DirBytes, s.DirFileBytes = &allocated, &length
		return nil
	}
}

// pgMeasure measures the troupe_jobs table of schema through conn: its
// rows, and its size on disk with indexes and TOAST.
func pgMeasure(conn *pgx.Conn, schema string) measure {
	table := pgx.Identifier{schema, "troupe_jobs"}.Sanitize()
	query := "SELECT count(*), pg_total_relation_size('" + table + "') FROM " + table
	return func(ctx context.Context, s *SoakSample) error {
		var rows, size int64
		if err := conn.QueryRow(ctx, query).Scan(&rows, &size); err != nil {
			return fmt.Errorf("measure %s: %w", table, err)
		}
		s.Rows, s.TableBytes = &rows, &size
		return nil
	}
}

// Soak submits at a fixed rate for a duration with a short retention of
// completed jobs, and measures the store every Sample: Badger's data
// directory, or the rows and size of PostgreSQL's troupe_jobs. It shows
// whether the pruner keeps the store within a band rather than growing
// with every job. The runtime is the one troupe serve runs; the bench only
// sets the retention.
func (b *Bencher) Soak(ctx context.Context, p SoakParams) (summary *Summary, err error) {
	if b.Store != storeopen.Badger && b.Store != storeopen.Postgres {
		return nil, fmt.Errorf("the soak measures a store on disk: badger or postgres, not %s", b.Store)
	}
	rec := newRecorder(false, false)
	retention := actors.Retention{Completed: p.RetentionCompleted}
	run, err := b.startSystem(ctx, rec, actors.QueueSizeDefault, actors.WithRetention(retention))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, run.stop()) }()
	sys, dir := run.sys, run.dir

	var take measure
	switch b.Store {
	case storeopen.Badger:
		take = badgerMeasure(dir)
	case storeopen.Postgres:
		conn, err := pgx.Connect(ctx, b.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("connect to measure the table: %w", err)
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer cancel()
			err = errors.Join(err, conn.Close(cctx))
		}()
		take = pgMeasure(conn, b.Schema)
	}

	var submitted atomic.Int64
	begin := time.Now()
	var samples []SoakSample
	sample := func() error {
		// The store is counted first: a job it holds finished was
		// submitted before, so Finished never passes Submitted.
		page, err := sys.List(ctx, domain.Filter{Statuses: []domain.Status{domain.StatusCompleted, domain.StatusFailed, domain.StatusCanceled}, Limit: 1})
		if err != nil {
			return fmt.Errorf("count the finished jobs: %w", err)
		}
		s := SoakSample{
			ElapsedSeconds: math.Round(time.Since(begin).Seconds()*10) / 10,
			Submitted:      submitted.Load(),
			Completed:      rec.completed.Load(),
			Finished:       int64(page.Total),
		}
		if err := take(ctx, &s); err != nil {
			return err
		}
		samples = append(samples, s)
		if p.Out != nil {
			fmt.Fprintln(p.Out, s)
		}
		return nil
	}
	if err := sample(); err != nil {
		return nil, err
	}

	params := make([]actors.SubmitParams, http.MaxBatchJobs)
	for i := range params {
		params[i] = actors.SubmitParams{Type: JobType, Payload: payload}
	}
	errs := map[string]int64{}
	total := int64(math.Round(p.Rate * p.Duration.Seconds()))
	tick := time.NewTicker(soakTick)
	defer tick.Stop()
	sampler := time.NewTicker(p.Sample)
	defer sampler.Stop()
	sent := int64(0)
	for sent < total {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-sampler.C:
			if err := sample(); err != nil {
				return nil, err
			}
			continue
		case <-tick.C:
		}
		due := min(total, int64(p.Rate*time.Since(begin).Seconds()))
		var err error
		sent, err = submitUpTo(ctx, sys, params, sent, due, errs, func(_ time.Time, jobs []actors.SubmitResult) {
			submitted.Add(int64(len(jobs)))
		})
		if err != nil {
			return nil, err
		}
	}
	took := time.Since(begin)
	if err := sample(); err != nil {
		return nil, err
	}

	completed := rec.completed.Load()
	return describe(&Summary{
		Mode:               "soak",
		Store:              b.Store,
		Workers:            b.Workers,
		Jobs:               submitted.Load(),
		Completed:          &completed,
		Seconds:            took.Seconds(),
		JobsPerSecond:      perSecond(completed, took),
		Errors:             errs,
		Rate:               p.Rate,
		SubmitRate:         perSecond(submitted.Load(), took),
		RetentionCompleted: p.RetentionCompleted.String(),
		Samples:            samples,
	}, b.nodes(), run.facts, DoneOutcomeCommitted, rec.completedByNode(b.nodes())), nil
}

// band describes a measurement over the samples: the first, the smallest
// and the largest, and the last, so that a steady band shows apart from
// linear growth; "" when no sample has it.
func band(samples []SoakSample, get func(SoakSample) *int64, show func(int64) string) string {
	var first, lo, hi, last int64
	n := 0
	for _, s := range samples {
		v := get(s)
		if v == nil {
			continue
		}
		if n == 0 {
			first, lo, hi = *v, *v, *v
		}
		lo, hi, last = min(lo, *v), max(hi, *v), *v
		n++
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("first %s, min %s, max %s, last %s", show(first), show(lo), show(hi), show(last))
}
