package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestPublicMessage(t *testing.T) {
	require.Nil(t, domain.Public(nil))

	_, ok := domain.PublicMessage(fmt.Errorf("%w (dial tcp db.internal:5432)", domain.ErrUnavailable))
	require.False(t, ok, "an unmarked error has no public message")

	full := domain.Public(fmt.Errorf("disk full (4096 bytes free): %w", domain.ErrStorageFull))
	wrapped := fmt.Errorf("badgerstore: put job at /var/lib/troupe: %w", full)
	msg, ok := domain.PublicMessage(wrapped)
	require.True(t, ok)
	require.Equal(t, "disk full (4096 bytes free): store is out of disk space", msg,
		"only the marked error's text, not what wraps it")
	require.True(t, errors.Is(wrapped, domain.ErrStorageFull), "the mark is transparent to errors.Is")
}
