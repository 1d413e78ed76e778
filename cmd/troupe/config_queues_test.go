package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
)

func TestConfigQueues(t *testing.T) {
	t.Parallel()

	t.Run("the file's queues become settings", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, `
workers: 2
queues:
  - name: email
    limit: 10
    rate: {count: 20, per: 1s, burst: 40}
  - name: sync
    perKey:
      limit: 1
      rate: {count: 5, per: 1m}
    ordered: true
    fair: true
  - name: cleared
`)
		cfg, err := loadConfig(t, []string{"--config", path})
		require.NoError(t, err)
		require.Equal(t, 2, cfg.Workers, "the other options are read as before")
		require.Equal(t, []QueueSpec{
			{Name: "email", Settings: domain.QueueSettings{Limit: 10, Rate: &domain.Rate{Count: 20, Per: time.Second, Burst: 40}}},
			{Name: "sync", Settings: domain.QueueSettings{
				PerKey:  &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 5, Per: time.Minute}},
				Ordered: true, Fair: true,
			}},
			{Name: "cleared"},
		}, cfg.Queues, "an entry with a name only clears the queue's settings")

		var log bytes.Buffer
		slog.New(slog.NewJSONHandler(&log, nil)).Info("config", slog.Any("config", cfg))
		require.Contains(t, log.String(), `"queues":[{"limit":10,"name":"email","rate":"20/1s burst 40"}`)
	})

	t.Run("none in the file, or no file, is none", func(t *testing.T) {
		t.Parallel()
		cfg, err := loadConfig(t, []string{"--config", writeFile(t, "queues: []\n")})
		require.NoError(t, err)
		require.Empty(t, cfg.Queues)
		cfg, err = loadConfig(t, nil, "TROUPE_QUEUES=whatever")
		require.NoError(t, err)
		require.Empty(t, cfg.Queues, "queues have no environment variable")
	})

	for _, tt := range []struct {
		name, file, wantErr string
	}{
		{"not a list", "queues: email\n", "queues: want a list of queues"},
		{"an entry that is no mapping", "queues: [email]\n", "queues[0]: want a mapping with the keys name, limit, rate, perKey, ordered, fair"},
		{"no name", "queues:\n  - limit: 3\n", "queues[0]: name is required"},
		{"a bad name", "queues:\n  - name: Email\n", `queues[0].name ("Email"): "Email" must match`},
		{"an unknown key", "queues:\n  - name: email\n    limits: 3\n", `queues[0] ("email"): unknown key "limits"`},
		{"a limit that is no number", "queues:\n  - name: email\n    limit: many\n", `queues[0].limit ("email"): want a whole number`},
		{"a negative limit", "queues:\n  - name: email\n    limit: -1\n", `queues[0].limit ("email"): must be between 0 and`},
		{"a rate that is no mapping", "queues:\n  - name: email\n    rate: 20/s\n", `queues[0].rate ("email"): want a mapping with the keys count, per, burst`},
		{"a period that is no duration", "queues:\n  - name: email\n    rate: {count: 20, per: x}\n", `queues[0].rate.per ("email"): x: want a duration with a unit`},
		{"a period without a unit", "queues:\n  - name: email\n    rate: {count: 20, per: 1}\n", `queues[0].rate.per ("email"): 1: want a duration with a unit`},
		{"no period", "queues:\n  - name: email\n    rate: {count: 20}\n", `queues[0].rate.per ("email"): is required`},
		{"no count", "queues:\n  - name: email\n    rate: {per: 1s}\n", `queues[0].rate.count ("email"): is required`},
		{"a zero count", "queues:\n  - name: email\n    rate: {count: 0, per: 1s}\n", `queues[0].rate.count ("email"): must be between 1 and`},
		{"a negative burst", "queues:\n  - name: email\n    rate: {count: 2, per: 1s, burst: -1}\n", `queues[0].rate.burst ("email"): must be between 0 (the count) and`},
		{"an unknown rate key", "queues:\n  - name: email\n    rate: {count: 2, per: 1s, every: 1m}\n", `queues[0].rate ("email"): unknown key "every"`},
		{"an empty perKey", "queues:\n  - name: sync\n    perKey: {}\n", `queues[0].perKey ("sync"): needs a limit or a rate`},
		{"a bad perKey period", "queues:\n  - name: sync\n    perKey: {rate: {count: 1, per: 2d}}\n", `queues[0].perKey.rate.per ("sync"): 2d: want a duration with a unit`},
		{"an unknown perKey key", "queues:\n  - name: sync\n    perKey: {limit: 1, order: true}\n", `queues[0].perKey ("sync"): unknown key "order"`},
		{"ordered without a key limit of 1", "queues:\n  - name: sync\n    perKey: {limit: 2}\n    ordered: true\n", `queues[0].ordered ("sync"): needs perKey.limit 1`},
		{"fair that is no bool", "queues:\n  - name: sync\n    fair: maybe\n", `queues[0].fair ("sync"): want true or false`},
		{"a name twice", "queues:\n  - name: a\n    limit: 1\n  - name: a\n    limit: 2\n", `queues[1] ("a"): queue "a" is already set by queues[0]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.file)
			_, err := loadConfig(t, []string{"--config", path})
			require.ErrorContains(t, err, "config file "+path+": ")
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("every mistake is reported", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, []string{"--config", writeFile(t, `
queues:
  - name: ok
    limit: 1
  - name: email
    limit: -3
    rate: {count: 20, per: 10/x}
  - name: sync
    perKey: {limit: 3}
    ordered: true
`)})
		require.ErrorContains(t, err, `queues[1].rate.per ("email"): 10/x: want a duration with a unit`)
		require.ErrorContains(t, err, `queues[2].ordered ("sync"): needs perKey.limit 1`)
		require.NotContains(t, err.Error(), "queues[0]")
	})
}

// settingsStore is a memory store whose queue settings are a map, and
// which records the settings it is given.
type settingsStore struct {
	*memstore.Store
	mu       sync.Mutex
	settings map[string]domain.QueueSettings
	writes   []string
	fail     error
}

func (s *settingsStore) Queues(context.Context) ([]domain.QueueInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.QueueInfo
	for name, settings := range s.settings {
		out = append(out, domain.QueueInfo{Name: name, Settings: settings})
	}
	return out, nil
}

func (s *settingsStore) SetQueueSettings(_ context.Context, name string, settings domain.QueueSettings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.settings[name] = settings
	s.writes = append(s.writes, name)
	return nil
}

func TestApplyQueuesWritesWhatChanged(t *testing.T) {
	t.Parallel()
	limited := domain.QueueSettings{Limit: 3}
	ordered := domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true}
	store := &settingsStore{Store: memstore.New(), settings: map[string]domain.QueueSettings{
		"same":     limited,
		"changed":  limited,
		"unlisted": ordered,
	}}
	t.Cleanup(func() { _ = store.Close() })
	var log bytes.Buffer
	m := NewMain(memoryConfig(), slog.New(slog.NewJSONHandler(&log, nil)))
	m.Config.Queues = []QueueSpec{
		{Name: "same", Settings: domain.QueueSettings{Limit: 3}},
		{Name: "changed", Settings: ordered},
		{Name: "new", Settings: domain.QueueSettings{Rate: &domain.Rate{Count: 20, Per: time.Second}}},
	}
	require.NoError(t, m.applyQueues(t.Context(), store))
	require.Equal(t, []string{"changed", "new"}, store.writes, "settings equal to the stored ones are not written again")
	require.Equal(t, map[string]domain.QueueSettings{
		"same":     limited,
		"changed":  ordered,
		"new":      {Rate: &domain.Rate{Count: 20, Per: time.Second}},
		"unlisted": ordered,
	}, store.settings, "a queue the file does not list keeps its settings")
	require.Equal(t, 2, strings.Count(log.String(), "queue settings applied from the config file"))

	store.fail = errors.New("disk on fire")
	m.Config.Queues = []QueueSpec{{Name: "same", Settings: limited}, {Name: "other", Settings: limited}}
	err := m.applyQueues(t.Context(), store)
	require.ErrorContains(t, err, `queues[1] ("other"): set queue other settings: disk on fire`)

	m.Config.Queues = []QueueSpec{{Name: "bad", Settings: domain.QueueSettings{Ordered: true}}}
	err = m.applyQueues(t.Context(), store)
	require.ErrorIs(t, err, domain.ErrInvalid, "settings set in Go are checked too")
	require.ErrorContains(t, err, `queues[0] ("bad"): ordered`)
}

// TestServeAppliesTheFileQueues starts the server on Badger with the
// file's queue settings, then again with a file that lists one queue
// less: the settings are stored and shared through the runtime, and the
// unlisted queue keeps its own.
func TestServeAppliesTheFileQueues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := memoryConfig()
	cfg.Store, cfg.DataDir = StoreBadger, dir
	email := domain.QueueSettings{Limit: 2, Rate: &domain.Rate{Count: 20, Per: time.Second}}
	sync := domain.QueueSettings{PerKey: &domain.KeyLimits{Limit: 1}, Ordered: true, Fair: true}
	cfg.Queues = []QueueSpec{{Name: "email", Settings: email}, {Name: "sync", Settings: sync}}

	settings := func(m *Main) map[string]domain.QueueSettings {
		t.Helper()
		infos, err := m.System().Queues(t.Context())
		require.NoError(t, err)
		out := map[string]domain.QueueSettings{}
		for _, q := range infos {
			if !q.Settings.IsZero() {
				out[q.Name] = q.Settings
			}
		}
		return out
	}

	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Run(t.Context()))
	require.Equal(t, map[string]domain.QueueSettings{"email": email, "sync": sync}, settings(m))
	require.NoError(t, m.Close(t.Context()))

	cfg.Queues = []QueueSpec{{Name: "email", Settings: domain.QueueSettings{Limit: 5}}}
	m = NewMain(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, m.Run(t.Context()))
	t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })
	require.Equal(t, map[string]domain.QueueSettings{"email": {Limit: 5}, "sync": sync}, settings(m),
		"the file's settings replace the stored ones; an unlisted queue keeps its own")

	cfg.DataDir = t.TempDir()
	cfg.Queues = []QueueSpec{{Name: "bad", Settings: domain.QueueSettings{Fair: true, Ordered: true}}}
	bad := NewMain(cfg, slog.New(slog.DiscardHandler))
	err := bad.Run(t.Context())
	require.ErrorContains(t, err, `queues[0] ("bad")`)
	require.NoError(t, bad.Close(t.Context()))
}
