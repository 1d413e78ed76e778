package pgstore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestOptionsValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts  Options
		field string
	}{
		{Options{}, "URL"},
		{Options{URL: "postgres://x", Schema: strings.Repeat("s", 64)}, "Schema"},
		{Options{URL: "postgres://x", MaxConns: -1}, "MaxConns"},
		{Options{URL: "postgres://x", MaxConns: 2, MinConns: 3}, "MinConns"},
	} {
		err := tt.opts.WithDefaults().Validate()

		require.ErrorIs(t, err, domain.ErrInvalid)
		var oe *OptionsError
		require.ErrorAs(t, err, &oe)
		require.Equal(t, tt.field, oe.Field)
		require.Contains(t, err.Error(), "Options."+tt.field)
	}
}
