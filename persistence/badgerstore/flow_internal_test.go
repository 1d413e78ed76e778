package badgerstore

import (
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// codecSettings returns settings that cover every part of their encoding.
func codecSettings() map[string]domain.QueueSettings {
	return map[string]domain.QueueSettings{
		"every field": {
			Limit: 10, Rate: &domain.Rate{Count: 20, Per: time.Second, Burst: 25},
			PerKey:  &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 5, Per: time.Minute, Burst: 7}},
			Ordered: true, Fair: true,
		},
		"limit only":        {Limit: domain.MaxFlowCount},
		"rate only":         {Rate: &domain.Rate{Count: 1, Per: domain.MaxRatePer}},
		"key limit only":    {PerKey: &domain.KeyLimits{Limit: 3}},
		"key rate only":     {PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 2, Per: 1500 * time.Millisecond, Burst: 4}}},
		"fair only":         {Fair: true},
		"ordered":           {PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true},
		"zero limit, rates": {Rate: &domain.Rate{Count: 3, Per: time.Millisecond}, PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 1, Per: time.Hour}}},
	}
}

func TestSettingsCodecRoundTrips(t *testing.T) {
	t.Parallel()
	for name, st := range codecSettings() {
		b, err := encodeSettings(st)
		require.NoError(t, err, name)
		again, err := encodeSettings(st.Clone())
		require.NoError(t, err, name)
		require.Equal(t, b, again, "%s: the same settings, the same bytes", name)
		got, err := decodeSettings("q", b)
		require.NoError(t, err, name)
		require.Equal(t, st, got, name)
		require.True(t, st.Equal(got), name)
	}
}

// settingsV1Golden is fullSettings' encoding: the format on disk, which
// may grow by flags but never change.
const settingsV1Golden = "011f0a148094ebdc0319010580b09dc2df0107"

func TestSettingsEncodingIsStable(t *testing.T) {
	t.Parallel()
	b, err := encodeSettings(codecSettings()["every field"])
	require.NoError(t, err)
	require.Equal(t, settingsV1Golden, hex.EncodeToString(b))
	require.LessOrEqual(t, len(b), 24, "compact")
}

func TestEncodeSettingsRefusesNegativeNumbers(t *testing.T) {
	t.Parallel()
	for _, st := range []domain.QueueSettings{
		{Limit: -1},
		{Rate: &domain.Rate{Count: -1, Per: time.Second}},
		{Rate: &domain.Rate{Count: 1, Per: -time.Second}},
		{PerKey: &domain.KeyLimits{Limit: -2}},
		{PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 1, Per: time.Second, Burst: -1}}},
	} {
		_, err := encodeSettings(st)
		require.ErrorIs(t, err, domain.ErrInvalid, "%+v", st)
	}
}

func TestDecodeSettingsRefusesDamage(t *testing.T) {
	t.Parallel()
	good, err := hex.DecodeString(settingsV1Golden)
	require.NoError(t, err)
	for n := range len(good) {
		_, err := decodeSettings("api", good[:n])
		require.ErrorIs(t, err, domain.ErrCorrupt, "cut to %d of %d bytes", n, len(good))
		require.ErrorContains(t, err, `queue "api"`)
	}
	damaged := map[string][]byte{
		"trailing byte":            append(append([]byte(nil), good...), 0),
		"unknown version":          {2, 0, 1},
		"unknown flag":             {settingsV1, 0x20, 0},
		"key rate without per key": {settingsV1, settingsKeyRate, 0, 1, 1, 0},
		"sets nothing":             {settingsV1, 0, 0},
		"limit past int":           {settingsV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bad uvarint":              {settingsV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"empty":                    {},
		"padded number":            {settingsV1, settingsFair, 0x80, 0x00},
	}
	for name, b := range damaged {
		_, err := decodeSettings("api", b)
		require.ErrorIs(t, err, domain.ErrCorrupt, name)
		require.ErrorContains(t, err, `settings of queue "api"`, name)
	}
}

// FuzzDecodeSettings: the decoder never panics, and what it accepts
// encodes back to the same bytes (one encoding per settings).
func FuzzDecodeSettings(f *testing.F) {
	for _, st := range codecSettings() {
		b, err := encodeSettings(st)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeSettings("q", b)
		if err != nil {
			return
		}
		again, err := encodeSettings(st)
		require.NoError(t, err)
		require.Equal(t, b, again)
	})
}

// Damaged settings make Queues fail with ErrCorrupt naming the queue, and
// Verify report them.
func TestDamagedSettingsAreCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	require.NoError(t, s.SetQueueSettings(ctx, "api", codecSettings()["every field"]))
	require.NoError(t, s.Close())

	db, err := badger.Open(Options{Dir: dir, Logger: logger}.WithDefaults().badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error {
		return txn.Set(settingsKey("api"), []byte{settingsV1, 0x80, 1})
	}))
	require.NoError(t, db.Close())

	report, err := Verify(ctx, dir, logger)
	require.NoError(t, err)
	require.Len(t, report.Damage, 1)
	require.Contains(t, report.Damage[0], `settings of queue "api"`)

	s, err = Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	_, err = s.Queues(ctx)
	require.ErrorIs(t, err, domain.ErrCorrupt)
	require.ErrorContains(t, err, `settings of queue "api"`)
}

// A layout 4 store is a layout 5 one without keyed jobs or settings:
// Open records layout 5, reads its jobs as they were, and the store then
// takes keys and settings.
func TestOpenUpgradesALayoutFourStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	s, err := Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	job := testJob(t, 0)
	job.Queue = "api"
	done := testJob(t, 1)
	done.Status, done.Attempts, done.FinishedAt, done.Result = domain.StatusCompleted, 1, testEpoch.Add(time.Minute), []byte(`{}`)
	require.NoError(t, s.Create(ctx, job, done))
	require.NoError(t, s.SetQueuePaused(ctx, "api", true))
	require.NoError(t, s.Close())

	db, err := badger.Open(Options{Dir: dir, Logger: logger}.WithDefaults().badgerOptions())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(txn *badger.Txn) error { return txn.Set(layoutKey, []byte{layoutV4}) }))
	require.NoError(t, db.Close())

	s, err = Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	for _, j := range []*domain.Job{job, done} {
		got, err := s.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, j, got)
		require.Empty(t, got.Key)
	}
	queues, err := s.Queues(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.QueueInfo{{Name: "api", Paused: true, Pending: 1}}, queues)

	job.Key = "tenant-1"
	require.NoError(t, s.Update(ctx, job))
	settings := codecSettings()["every field"]
	require.NoError(t, s.SetQueueSettings(ctx, "api", settings))
	require.NoError(t, s.Close())
	requireLayoutVersion(t, dir, layoutV5)

	report, err := Verify(ctx, dir, logger)
	require.NoError(t, err)
	require.Empty(t, report.Damage)

	s, err = Open(Options{Dir: dir, Logger: logger})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	got, err := s.Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, job, got)
	queues, err = s.Queues(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.QueueInfo{{Name: "api", Paused: true, Settings: settings, Pending: 1}}, queues)
}

// A store with keyed jobs and settings is one an older build must refuse:
// its layout is past 4, the last that build reads.
func TestKeysAndSettingsComeWithLayoutFive(t *testing.T) {
	t.Parallel()
	require.Equal(t, layoutV5, layoutCurrent)
	require.False(t, knownLayout([]byte{layoutV5 + 1}))
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	requireLayoutVersion(t, dir, layoutV5)
}
