package badgerstore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestOptionsValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts  Options
		field string
		value any
	}{
		{Options{}, "Dir", nil},
		{Options{Dir: "x", InMemory: true}, "Dir", "x"},
		{Options{Dir: "x", MinFreeBytes: 1 << 20}, "MinFreeBytes", int64(1 << 20)},
		{Options{Dir: "x", MaxBatch: -1}, "MaxBatch", -1},
	} {
		err := tt.opts.WithDefaults().Validate()

		require.ErrorIs(t, err, domain.ErrInvalid)
		var oe *OptionsError
		require.ErrorAs(t, err, &oe)
		require.Equal(t, tt.field, oe.Field)
		require.Equal(t, tt.value, oe.Value)
		require.Contains(t, err.Error(), tt.field)
	}
}
