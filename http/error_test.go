package http

import (
	"errors"
	"fmt"
	nethttp "net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestProblemFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err      error
		status   int
		typ      string
		internal bool
	}{
		{domain.ErrNotFound, nethttp.StatusNotFound, ProblemTypeNotFound, false},
		{domain.ErrInvalid, nethttp.StatusBadRequest, ProblemTypeInvalidRequest, false},
		{domain.ErrUnknownJobType, nethttp.StatusBadRequest, ProblemTypeUnknownJobType, false},
		{domain.ErrNotCancelable, nethttp.StatusConflict, ProblemTypeNotCancelable, false},
		{domain.ErrAlreadyExists, nethttp.StatusConflict, ProblemTypeConflict, false},
		{domain.ErrDuplicate, nethttp.StatusConflict, ProblemTypeConflict, false},
		{domain.ErrInvalidTransition, nethttp.StatusConflict, ProblemTypeConflict, false},
		{domain.ErrQueueFull, nethttp.StatusServiceUnavailable, ProblemTypeQueueFull, false},
		{domain.ErrNotRunning, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable, false},
		{domain.ErrClosed, nethttp.StatusServiceUnavailable, ProblemTypeUnavailable, false},
		{fmt.Errorf("list: %w", domain.ErrUnavailable), nethttp.StatusServiceUnavailable, ProblemTypeUnavailable, false},
		{&nethttp.MaxBytesError{Limit: 10}, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge, false},
		{invalidRequest("bad"), nethttp.StatusBadRequest, ProblemTypeInvalidRequest, false},
		{validationFailed(FieldError{Field: "f", Message: "is bad"}), nethttp.StatusBadRequest, ProblemTypeValidation, false},
		{errors.New("disk on fire"), nethttp.StatusInternalServerError, ProblemTypeInternal, true},
		{domain.ErrDuplicateHandler, nethttp.StatusInternalServerError, ProblemTypeInternal, true},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			t.Parallel()
			for _, err := range []error{tt.err, fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", tt.err))} {
				p, internal := problemFor(err)

				require.Equal(t, tt.status, p.Status)
				require.Equal(t, tt.typ, p.Type)
				require.NotEmpty(t, p.Title)
				require.Equal(t, tt.internal, internal)
				if tt.internal {
					require.NotContains(t, p.Detail, tt.err.Error())
				}
			}
		})
	}

	t.Run("UnknownJobTypeKeepsTheSentinel", func(t *testing.T) {
		t.Parallel()
		err := unknownJobType("x", nil, fmt.Errorf("submit: %w", domain.ErrUnknownJobType))

		require.ErrorIs(t, err, domain.ErrUnknownJobType)
	})
}
