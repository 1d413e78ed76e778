package badgerstore

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// codecJobs returns jobs that cover every corner of the encoding.
func codecJobs(t testing.TB) map[string]*domain.Job {
	t.Helper()
	now := time.Date(2025, 6, 1, 12, 30, 0, 123456000, time.UTC)
	fresh, err := domain.NewJob("send_email", []byte(`{"to":"ada@example.com"}`), 3, now)
	require.NoError(t, err)

	full := fresh.Clone()
	full.Status = domain.StatusFailed
	full.Attempts, full.MaxAttempts = 3, 3
	full.LastError = "smtp: 550 «mailbox unavailable»"
	full.UpdatedAt = now.Add(time.Minute)
	full.RunAt = now.Add(30 * time.Second)
	full.StartedAt = now.Add(40 * time.Second)
	full.FinishedAt = now.Add(time.Minute)

	jobs := map[string]*domain.Job{"new": fresh, "every field": full}
	for _, s := range domain.Statuses() {
		j := full.Clone()
		j.Status = s
		jobs["status "+string(s)] = j
	}
	nilPayload := fresh.Clone()
	nilPayload.Payload = nil
	jobs["nil payload"] = nilPayload
	emptyPayload := fresh.Clone()
	emptyPayload.Payload = []byte{}
	jobs["empty payload"] = emptyPayload
	binary := fresh.Clone()
	binary.Payload = []byte{0, 0xff, 0x80, 0x7f, 0}
	jobs["binary payload"] = binary
	big := fresh.Clone()
	big.Payload = []byte(strings.Repeat("x", 300_000))
	big.LastError = strings.Repeat("e", 200)
	jobs["big payload"] = big
	longType := fresh.Clone()
	longType.Type = domain.JobType(strings.Repeat("t", domain.MaxJobTypeLength))
	jobs["longest type"] = longType
	emptyType := fresh.Clone()
	emptyType.Type = ""
	jobs["empty type"] = emptyType
	old := full.Clone()
	old.CreatedAt = time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC)
	old.RunAt = time.Unix(0, 0).UTC()
	jobs["before and at the epoch"] = old
	zero := fresh.Clone()
	zero.CreatedAt, zero.UpdatedAt = time.Time{}, time.Time{}
	jobs["zero times"] = zero
	counters := fresh.Clone()
	counters.Attempts, counters.MaxAttempts = -1, 1<<40
	jobs["odd counters"] = counters
	scheduled := fresh.Clone()
	scheduled.ScheduleAt(now.Add(time.Hour), now)
	scheduled.Queue, scheduled.Priority = "email", 1
	scheduled.UniqueKey, scheduled.UniqueFor = "welcome:ada", 24*time.Hour+time.Nanosecond
	scheduled.Timeout = 90 * time.Second
	jobs["scheduled with every new field"] = scheduled
	odd := full.Clone()
	odd.Queue, odd.Priority, odd.UniqueKey = "", 0, strings.Repeat("k", domain.MaxUniqueKeyLength)
	odd.UniqueFor, odd.Timeout = -time.Second, -1
	jobs["empty queue, zero priority, negative durations"] = odd
	fromSchedule := full.Clone()
	fromSchedule.Status, fromSchedule.Schedule = domain.StatusCompleted, "nightly-report.v2"
	fromSchedule.UniqueKey, fromSchedule.UniqueFor = "schedule:nightly-report.v2:2025-06-01T03:00:00Z", time.Hour
	jobs["submitted by a schedule"] = fromSchedule
	noRunAt := fresh.Clone()
	noRunAt.RunAt = time.Time{}
	jobs["zero runAt"] = noRunAt
	withResult := fromSchedule.Clone()
	withResult.Result = []byte(`{"sent":true,"id":"«x»","n":[1,2.5e3]}`)
	withResult.Progress = &domain.Progress{Percent: 100, Message: "done ✓", UpdatedAt: now.Add(50 * time.Second)}
	jobs["result and progress"] = withResult
	emptyResult := full.Clone()
	emptyResult.Result = []byte{}
	jobs["empty result"] = emptyResult
	running := fresh.Clone()
	running.Status, running.Attempts = domain.StatusRunning, 1
	running.Progress = &domain.Progress{Percent: 33.333333333333336}
	jobs["progress without message or time"] = running
	keyed := withResult.Clone()
	keyed.Key = "tenant:«ada»"
	jobs["flow key with every other field"] = keyed
	keyedPlain := fresh.Clone()
	keyedPlain.Key = strings.Repeat("k", domain.MaxKeyLength)
	jobs["longest flow key"] = keyedPlain
	return jobs
}

func TestCodecRoundTrips(t *testing.T) {
	t.Parallel()
	for name, j := range codecJobs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := encode(nil, j)
			require.NoError(t, err)
			require.Equal(t, len(b), cap(b), "encode allocates exactly what it writes")

			got, err := decode(b)
			require.NoError(t, err)
			require.Equal(t, j, got)

			id, entry, err := decodeIndex(b)
			require.NoError(t, err)
			require.Equal(t, j.ID, id)
			require.Equal(t, indexOf(j), entry)

			// decode copies: reusing the buffer changes nothing it returned.
			clear(b)
			require.Equal(t, j, got)
		})
	}
}

func TestCodecKeepsMicroseconds(t *testing.T) {
	t.Parallel()
	j, err := domain.NewJob("noop", nil, 1, time.Now())
	require.NoError(t, err)
	// A caller's time with nanoseconds and a zone comes back as the store
	// keeps it: UTC, to the microsecond.
	local := time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", 3600))
	j.RunAt = local
	b, err := encode(nil, j)
	require.NoError(t, err)
	got, err := decode(b)
	require.NoError(t, err)
	require.Equal(t, domain.Timestamp(local), got.RunAt)
}

func TestEncodeRejectsWhatTheIndexCannotHold(t *testing.T) {
	t.Parallel()
	j, err := domain.NewJob("noop", nil, 1, time.Now())
	require.NoError(t, err)

	unknown := j.Clone()
	unknown.Status = "sleeping"
	_, err = encode(nil, unknown)
	require.ErrorIs(t, err, domain.ErrInvalid)

	long := j.Clone()
	long.Type = domain.JobType(strings.Repeat("t", domain.MaxJobTypeLength+1))
	_, err = encode(nil, long)
	require.ErrorIs(t, err, domain.ErrInvalid)

	nan := j.Clone()
	nan.Progress = &domain.Progress{Percent: math.NaN()}
	_, err = encode(nil, nan)
	require.ErrorIs(t, err, domain.ErrInvalid)
}

func TestDecodeRejectsDamagedSnapshots(t *testing.T) {
	t.Parallel()
	j := codecJobs(t)["every field"]
	good, err := encode(nil, j)
	require.NoError(t, err)

	for n := range len(good) {
		_, err := decode(good[:n])
		require.ErrorIs(t, err, errCorrupt, "truncated to %d of %d bytes", n, len(good))
	}
	damaged := map[string]func(b []byte) []byte{
		"trailing byte":   func(b []byte) []byte { return append(b, 0) },
		"unknown version": func(b []byte) []byte { b[0] = 3; return b },
		"status zero":     func(b []byte) []byte { b[17] = 0; return b },
		"unknown status":  func(b []byte) []byte { b[17] = 9; return b },
		"unknown flag":    func(b []byte) []byte { b[18] |= 0x80; return b },
		"type too long": func(b []byte) []byte {
			return append(append(b[:20], 200, 1), make([]byte, 200)...) // uvarint 200
		},
		"field past the end": func(b []byte) []byte {
			return append(b[:20], 0xff, 0xff, 0xff, 0xff, 0x0f)
		},
		"version 1 with the scheduled status": func(b []byte) []byte { b[0], b[17] = snapshotV1, 6; return b },
	}
	for name, damage := range damaged {
		_, err := decode(damage(append([]byte(nil), good...)))
		require.ErrorIs(t, err, errCorrupt, name)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoders: they must never
// panic, and whatever decode accepts must encode and decode back to the
// same job, with decodeIndex agreeing on the index entry.
func FuzzDecode(f *testing.F) {
	for _, j := range codecJobs(f) {
		if len(j.Payload) > 1000 {
			continue
		}
		b, err := encode(nil, j)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{snapshotV1})
	f.Add(append([]byte{snapshotV1}, make([]byte, 40)...))
	for _, v1 := range versionOneSnapshots {
		b, err := hex.DecodeString(v1.hex)
		require.NoError(f, err)
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		id, entry, indexErr := decodeIndex(b)
		j, err := decode(b)
		if err != nil {
			return
		}
		require.NoError(t, indexErr, "decode accepted what decodeIndex refused")
		require.Equal(t, j.ID, id)
		require.Equal(t, indexOf(j), entry)

		again, err := encode(nil, j)
		require.NoError(t, err)
		back, err := decode(again)
		require.NoError(t, err)
		require.Equal(t, j, back)
	})
}

func TestStatusCodesAreStable(t *testing.T) {
	t.Parallel()
	// The codes are on disk: this table may grow, never change.
	want := map[domain.Status]byte{
		domain.StatusPending:   1,
		domain.StatusRunning:   2,
		domain.StatusCompleted: 3,
		domain.StatusFailed:    4,
		domain.StatusCanceled:  5,
		domain.StatusScheduled: 6,
	}
	for _, s := range domain.Statuses() {
		code, ok := statusCode(s)
		require.True(t, ok, s)
		require.Equal(t, want[s], code, s)
		back, ok := statusOf(code)
		require.True(t, ok)
		require.Equal(t, s, back)
	}
	_, ok := statusOf(0)
	require.False(t, ok)
	_, ok = statusCode("")
	require.False(t, ok)
}

// versionOneSnapshots were written by the encoder of version 1, before
// queues and scheduling, with the jobs they hold as that version knew them.
var versionOneSnapshots = []struct {
	name string
	hex  string
	job  func() *domain.Job
}{
	{
		name: "pending",
		hex:  "010190a5f37c1e7d2a9b3c4d5e6f70819201070a73656e645f656d61696c8091ebe4b9a09b068091ebe4b9a09b06000600187b22746f223a22616461406578616d706c652e636f6d227d",
		job: func() *domain.Job {
			created := time.Date(2025, 6, 1, 12, 30, 0, 123456000, time.UTC)
			return &domain.Job{ID: uuid.MustParse("0190a5f3-7c1e-7d2a-9b3c-4d5e6f708192"), Type: "send_email",
				Payload: []byte(`{"to":"ada@example.com"}`), Status: domain.StatusPending, MaxAttempts: 3,
				CreatedAt: created, UpdatedAt: created}
		},
	},
	{
		name: "failed",
		hex:  "010190a5f37c1e7d2a9b3c4d5e6f708193043f0a73656e645f656d61696c8091ebe4b9a09b0680ad879ebaa09b06809fb981baa09b0680f9fd8abaa09b0680ad879ebaa09b06060609736d74703a20353530027b7d",
		job: func() *domain.Job {
			created := time.Date(2025, 6, 1, 12, 30, 0, 123456000, time.UTC)
			return &domain.Job{ID: uuid.MustParse("0190a5f3-7c1e-7d2a-9b3c-4d5e6f708193"), Type: "send_email",
				Payload: []byte(`{}`), Status: domain.StatusFailed, Attempts: 3, MaxAttempts: 3, LastError: "smtp: 550",
				CreatedAt: created, UpdatedAt: created.Add(time.Minute), RunAt: created.Add(30 * time.Second),
				StartedAt: created.Add(40 * time.Second), FinishedAt: created.Add(time.Minute)}
		},
	},
}

// TestCodecReadsVersionOne decodes snapshots written before queues and
// scheduling: their jobs are in the default queue at the default
// priority, with no unique key or timeout, and a job due at once (no
// RunAt) is due from its creation.
func TestCodecReadsVersionOne(t *testing.T) {
	t.Parallel()
	for _, v1 := range versionOneSnapshots {
		t.Run(v1.name, func(t *testing.T) {
			t.Parallel()
			b, err := hex.DecodeString(v1.hex)
			require.NoError(t, err)
			require.Equal(t, snapshotV1, b[0])
			want := v1.job()
			want.Queue, want.Priority = domain.DefaultQueue, domain.DefaultPriority
			if want.RunAt.IsZero() {
				want.RunAt = want.CreatedAt
			}
			got, err := decode(b)
			require.NoError(t, err)
			require.Equal(t, want, got)

			id, entry, err := decodeIndex(b)
			require.NoError(t, err)
			require.Equal(t, want.ID, id)
			require.Equal(t, indexOf(want), entry)

			again, err := encode(nil, got)
			require.NoError(t, err)
			require.Equal(t, snapshotV2, again[0], "rewritten in the current version")
			back, err := decode(again)
			require.NoError(t, err)
			require.Equal(t, want, back)
		})
	}
}

// snapshotBeforeResults was written by the encoder before Result and
// Progress (the "submitted by a schedule" job of codecJobs, another ID).
const snapshotBeforeResults = "0201a23d1dfa8e7c2ebb12ddfb27abaf13030abf0a73656e645f656d61696c2f7363686564756c653a6e696768746c792d7265706f72742e76323a323032352d30362d30315430333a30303a30305a8091ebe4b9a09b0680ad879ebaa09b06809fb981baa09b0680f9fd8abaa09b0680ad879ebaa09b0606068080c58bc6d101116e696768746c792d7265706f72742e763221736d74703a2035353020c2ab6d61696c626f7820756e617661696c61626c65c2bb187b22746f223a22616461406578616d706c652e636f6d227d"

// TestCodecReadsSnapshotsWrittenBeforeResults: a snapshot from before
// Result and Progress reads with neither, and a job without them encodes
// to the very same bytes, so they cost such a job nothing.
func TestCodecReadsSnapshotsWrittenBeforeResults(t *testing.T) {
	t.Parallel()
	b, err := hex.DecodeString(snapshotBeforeResults)
	require.NoError(t, err)
	got, err := decode(b)
	require.NoError(t, err)
	want := codecJobs(t)["submitted by a schedule"]
	want.ID = got.ID
	require.Equal(t, want, got)
	require.Nil(t, got.Result)
	require.Nil(t, got.Progress)
	again, err := encode(nil, got)
	require.NoError(t, err)
	require.Equal(t, b, again)
}

// TestCodecRefusesNaNProgress: a NaN percent is damage, not a job.
func TestCodecRefusesNaNProgress(t *testing.T) {
	t.Parallel()
	j := codecJobs(t)["progress without message or time"]
	b, err := encode(nil, j)
	require.NoError(t, err)
	// The percent sits right before the message (empty: one byte), the
	// time (zero: 10 bytes), the last error (one byte) and the payload.
	at := len(b) - fieldLen(len(j.Payload)) - 1 - varintLen(micros(time.Time{})) - 1 - 8
	require.Equal(t, math.Float64bits(j.Progress.Percent), binary.BigEndian.Uint64(b[at:]))
	binary.BigEndian.PutUint64(b[at:], math.Float64bits(math.NaN()))
	_, err = decode(b)
	require.ErrorIs(t, err, errCorrupt)
}

// snapshotsBeforeKeys were written by the encoder before Job.Key, for
// codecJobs' jobs of these names with the ID goldenID.
var snapshotsBeforeKeys = map[string]string{
	"every field":                    "020190a5f37c1e7d2a9b3c4d5e6f7081a004003f0a73656e645f656d61696c8091ebe4b9a09b0680ad879ebaa09b06809fb981baa09b0680f9fd8abaa09b0680ad879ebaa09b06060621736d74703a2035353020c2ab6d61696c626f7820756e617661696c61626c65c2bb187b22746f223a22616461406578616d706c652e636f6d227d",
	"result and progress":            "020190a5f37c1e7d2a9b3c4d5e6f7081a0033abf0a73656e645f656d61696c2f7363686564756c653a6e696768746c792d7265706f72742e76323a323032352d30362d30315430333a30303a30305a8091ebe4b9a09b0680ad879ebaa09b06809fb981baa09b0680f9fd8abaa09b0680ad879ebaa09b0606068080c58bc6d101116e696768746c792d7265706f72742e7632287b2273656e74223a747275652c226964223a22c2ab78c2bb222c226e223a5b312c322e3565335d7d405900000000000008646f6e6520e29c9380d3c294baa09b0621736d74703a2035353020c2ab6d61696c626f7820756e617661696c61626c65c2bb187b22746f223a22616461406578616d706c652e636f6d227d",
	"scheduled with every new field": "020190a5f37c1e7d2a9b3c4d5e6f7081a00607cf0a73656e645f656d61696c05656d61696c0b77656c636f6d653a6164618091ebe4b9a09b068091ebe4b9a09b0680a188ced4a09b060006028280f89492a5278090d8c69e0500187b22746f223a22616461406578616d706c652e636f6d227d",
}

var goldenID = uuid.MustParse("0190a5f3-7c1e-7d2a-9b3c-4d5e6f7081a0")

// TestCodecKeylessJobsKeepTheirBytes: a job without a flow key encodes
// to the very bytes it did before keys existed, so keys cost such a job
// nothing, and those bytes read back as the job.
func TestCodecKeylessJobsKeepTheirBytes(t *testing.T) {
	t.Parallel()
	jobs := codecJobs(t)
	for name, golden := range snapshotsBeforeKeys {
		j := jobs[name]
		j.ID = goldenID
		b, err := encode(nil, j)
		require.NoError(t, err)
		require.Equal(t, golden, hex.EncodeToString(b), name)
		got, err := decode(b)
		require.NoError(t, err)
		require.Equal(t, j, got, name)
		require.Empty(t, got.Key, name)
	}
}

// TestCodecKeyCostsItsBytesOnly: a key adds its flag and its field to a
// snapshot, nothing else, and is read back in the header.
func TestCodecKeyCostsItsBytesOnly(t *testing.T) {
	t.Parallel()
	j := codecJobs(t)["result and progress"]
	without, err := encode(nil, j)
	require.NoError(t, err)
	j.Key = "tenant-42"
	with, err := encode(nil, j)
	require.NoError(t, err)
	require.Equal(t, len(without)+fieldLen(len(j.Key)), len(with))
	require.Equal(t, byte(flagKey>>8), (with[18]^without[18])&byte(flagKey>>8), "the flag is in the high byte")

	for _, c := range []struct {
		queue, key string
		match      bool
	}{
		{"", "", true}, {"", "tenant-42", true}, {j.Queue, "tenant-42", true},
		{"", "tenant-4", false}, {"", "tenant-420", false}, {"other", "tenant-42", false},
	} {
		match, err := headerMatches(with, c.queue, c.key)
		require.NoError(t, err)
		require.Equal(t, c.match, match, "queue %q key %q", c.queue, c.key)
	}
	match, err := headerMatches(without, "", "tenant-42")
	require.NoError(t, err)
	require.False(t, match, "a job without a key has none")
}

// TestDecodeRefusesAnEmptyKey: encode writes the key's flag for a key
// only, so a flag with an empty key is damage.
func TestDecodeRefusesAnEmptyKey(t *testing.T) {
	t.Parallel()
	j := codecJobs(t)["new"]
	b, err := encode(nil, j)
	require.NoError(t, err)
	// The key would follow the type (the job is in the default queue,
	// without a unique key): set the flag and insert an empty field.
	typeEnd := 20 + fieldLen(len(j.Type))
	damaged := append(append(append([]byte(nil), b[:typeEnd]...), 0), b[typeEnd:]...)
	damaged[18] |= byte(flagKey >> 8)
	_, err = decode(damaged)
	require.ErrorIs(t, err, errCorrupt)
	_, _, err = decodeIndex(damaged)
	require.ErrorIs(t, err, errCorrupt)

	// The same with a one-byte key reads back.
	fixed := append(append(append([]byte(nil), b[:typeEnd]...), 1, 'k'), b[typeEnd:]...)
	fixed[18] |= byte(flagKey >> 8)
	got, err := decode(fixed)
	require.NoError(t, err)
	require.Equal(t, "k", got.Key)
}

// TestCodecNeverStoresWaitingFor: why a job waits is the runtime's to
// say as it reads; a snapshot holds none of it.
func TestCodecNeverStoresWaitingFor(t *testing.T) {
	t.Parallel()
	j := codecJobs(t)["flow key with every other field"]
	plain, err := encode(nil, j)
	require.NoError(t, err)
	j.WaitingFor = domain.WaitKeyOrder
	b, err := encode(nil, j)
	require.NoError(t, err)
	require.Equal(t, plain, b)
	got, err := decode(b)
	require.NoError(t, err)
	require.Empty(t, got.WaitingFor)
}
