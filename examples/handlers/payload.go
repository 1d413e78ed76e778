package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// invalidField builds the error that a payload's Validate returns: it wraps
// domain.ErrInvalid and names the JSON field, so that whoever reads the job's
// lastError knows what to fix.
func invalidField(field, format string, args ...any) error {
	return fmt.Errorf("%w: field %q %s", domain.ErrInvalid, field, fmt.Sprintf(format, args...))
}

// rejected marks a payload error as permanent: retrying the same payload
// cannot succeed, so the job should fail at once.
func rejected(typ domain.JobType, err error) error {
	return domain.Permanent(fmt.Errorf("%s: %w", typ, err))
}

// decode reads payload into v strictly: one JSON object, no unknown fields
// (a misspelt field would otherwise be silently ignored), nothing after it.
// A JSON null decodes to the zero value, so Validate reports the missing
// fields by name. Errors wrap domain.ErrInvalid.
func decode(payload []byte, v any) error {
	if len(bytes.TrimSpace(payload)) == 0 {
		return fmt.Errorf("%w: payload is empty, want a JSON object", domain.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: payload has data after its JSON object", domain.ErrInvalid)
	}
	return nil
}

// describeDecodeError turns encoding/json's messages, which speak of Go
// types, into ones that speak of the payload's JSON fields.
func describeDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Errorf("%w: payload must be a JSON object, got %s", domain.ErrInvalid, typeErr.Value)
		}
		return invalidField(typeErr.Field, "must be %s, got %s", describeKind(typeErr.Type), typeErr.Value)
	}
	// encoding/json has no type for this error, only a message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%w: payload has an unknown field %s", domain.ErrInvalid, name)
	}
	return fmt.Errorf("%w: payload is not valid JSON: %w", domain.ErrInvalid, err)
}

// describeKind names what a JSON value must be to decode into t.
func describeKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	default:
		return "a " + t.String()
	}
}

// work stands in for real work: it waits d, or until ctx is done, and then
// returns ctx's error. A timer, unlike time.Sleep, lets a cancel or a
// shutdown interrupt the wait at once.
func work(ctx context.Context, typ domain.JobType, d time.Duration) error {
	if err := canceled(ctx, typ); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return canceled(ctx, typ)
	case <-timer.C:
		return nil
	}
}
