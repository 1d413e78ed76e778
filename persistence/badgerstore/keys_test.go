package badgerstore

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

// TestIndexKeysSortInListOrder checks the promise the layout rests on:
// byte order of index keys is domain.Compare order, for times before and
// after the epoch, the zero time, and ties broken by ID.
func TestIndexKeysSortInListOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		{},
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0).UTC(),
		time.Unix(0, 1000).UTC(),
		time.Unix(-1, 999_999_000).UTC(),
		time.Date(2025, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 2000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
	}
	var jobs []*domain.Job
	for range 500 {
		var id uuid.UUID
		for i := range id {
			id[i] = byte(rng.UintN(4)) // few values: many shared prefixes
		}
		jobs = append(jobs, &domain.Job{ID: id, Status: domain.StatusPending, Type: "t", CreatedAt: times[rng.IntN(len(times))]})
	}

	byKey := slices.Clone(jobs)
	slices.SortStableFunc(byKey, func(a, b *domain.Job) int {
		return bytes.Compare(appendStatusKey(nil, a.ID, indexOf(a)), appendStatusKey(nil, b.ID, indexOf(b)))
	})
	for i := 1; i < len(byKey); i++ {
		require.GreaterOrEqual(t, domain.Compare(byKey[i], byKey[i-1]), 0, "status keys: %v sorts before %v", byKey[i-1].ID, byKey[i].ID)
	}
	slices.SortStableFunc(byKey, func(a, b *domain.Job) int {
		return bytes.Compare(appendTypeKey(nil, a.ID, indexOf(a)), appendTypeKey(nil, b.ID, indexOf(b)))
	})
	for i := 1; i < len(byKey); i++ {
		require.GreaterOrEqual(t, domain.Compare(byKey[i], byKey[i-1]), 0, "type keys: %v sorts before %v", byKey[i-1].ID, byKey[i].ID)
	}
}

func TestTypeRangesDoNotOverlap(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	for _, pair := range [][2]string{{"send", "send_email"}, {"", "a"}, {"a", "a\x00"}} {
		short, long := pair[0], pair[1]
		longKey := appendTypeKey(nil, id, indexEntry{typ: long})
		shortKey := appendTypeKey(nil, id, indexEntry{typ: short})
		require.False(t, bytes.HasPrefix(longKey, appendTypePrefix(nil, short)), "%q in the range of %q", long, short)
		require.False(t, bytes.HasPrefix(shortKey, appendTypePrefix(nil, long)), "%q in the range of %q", short, long)
	}
}

func TestIDOfIndexKey(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	e := indexEntry{status: 2, createdAt: 42, typ: "send_email"}
	for _, key := range [][]byte{appendStatusKey(nil, id, e), appendTypeKey(nil, id, e)} {
		got, ok := idOfIndexKey(key)
		require.True(t, ok)
		require.Equal(t, id, got)
	}
	_, ok := idOfIndexKey([]byte("short"))
	require.False(t, ok)
}
