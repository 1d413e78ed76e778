package memstore_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/persistence/memstore"
	"github.com/troupe-go/troupe/persistence/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) domain.Store {
		s := memstore.New()
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !errors.Is(err, domain.ErrClosed) {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}
