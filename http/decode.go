package http

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds of a job's payload beyond its size (Config.MaxPayloadBytes). A
// payload must be readable by whoever reads it back: the dashboard, the
// handlers, clients in any language.
const (
	// MaxPayloadDepth bounds how deeply a payload's arrays and objects
	// nest. Readers that recurse (the dashboard's renderer, most JSON
	// libraries) run out of stack on deep nesting, and real payloads stay
	// within a handful of levels.
	MaxPayloadDepth = 64
	// MaxPayloadNumberLength bounds the characters of one number in a
	// payload. The longest float64 needs 24 (-2.2250738585072014e-308) and
	// an int64 20; 100 leaves room for wide decimals while staying far
	// below where readers slow down or refuse a number (Python refuses
	// integers of more than 4,300 digits by default).
	MaxPayloadNumberLength = 100
)

// maxFieldErrors bounds the field errors of one answer, so that a batch of
// a thousand bad jobs still gets a short answer; the detail says how many
// were left out.
const maxFieldErrors = 100

// decodeStrict decodes data, which holds one JSON value, into obj, a
// pointer to a struct. Unknown members and data after the value are
// errors, and so are member names that differ from the known ones only in
// case (encoding/json matches names case-insensitively), members that
// appear twice and strings that are not valid UTF-8 (encoding/json
// replaces the bad bytes silently).
func decodeStrict(data []byte, obj any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errEmptyBody()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		// encoding/json stops at the first unknown member; the value is
		// valid JSON (it is scanned whole before decoding), so name them all.
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			if fields := memberErrors(data, reflect.TypeOf(obj).Elem()); len(fields) > 0 {
				return validationFailed(fields...)
			}
		}
		return decodeError(err)
	}
	// One JSON value only: anything after it is a malformed body.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidRequest("the request body has data after the JSON object")
	}
	if fields := memberErrors(data, reflect.TypeOf(obj).Elem()); len(fields) > 0 {
		return validationFailed(fields...)
	}
	return nil
}

// memberErrors checks the members of the JSON object data against the
// struct type t, in the order they appear: each name must be exactly the
// wire name of a field, at most once, and a string value must be valid
// UTF-8. Only the top level is checked; data must have decoded into t, so
// it is valid JSON and a plain scan suffices: every submission passes
// here, and encoding/json's tokenizer cost more than the decoding itself.
func memberErrors(data []byte, t reflect.Type) []FieldError {
	if t.Kind() != reflect.Struct {
		return nil
	}
	known := wireNames(t)
	i := skipJSONSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil // null: nothing to check
	}
	var (
		fields []FieldError
		seen   []string // a handful of members: a slice beats a map
	)
	for i = skipJSONSpace(data, i+1); i < len(data) && data[i] != '}'; i = skipJSONSpace(data, i) {
		if data[i] == ',' {
			i = skipJSONSpace(data, i+1)
		}
		end := jsonStringEnd(data, i)
		name := jsonMemberName(data[i:end])
		i = skipJSONSpace(data, end) + 1 // past the colon
		i = skipJSONSpace(data, i)
		valueStart := i
		i = jsonValueEnd(data, i)
		value := data[valueStart:i]
		switch {
		case !slices.Contains(known, name):
			fields = append(fields, FieldError{Field: name, Message: "is not a known field"})
		case slices.Contains(seen, name):
			fields = append(fields, FieldError{Field: name, Message: "appears more than once"})
		case value[0] == '"' && !utf8.Valid(value):
			fields = append(fields, FieldError{Field: name, Message: "is not valid UTF-8"})
		}
		seen = append(seen, name)
	}
	return fields
}

// wireNames returns the JSON member names of the exported fields of the
// struct type t.
func wireNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "-" && f.IsExported() {
			names = append(names, cmp.Or(name, f.Name))
		}
	}
	return names
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// jsonStringEnd returns the index after the string that starts at i.
func jsonStringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// jsonValueEnd returns the index after the value that starts at i.
func jsonValueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return jsonStringEnd(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = jsonStringEnd(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(data)
	}
	for i < len(data) && !strings.ContainsRune(",}] \t\n\r", rune(data[i])) {
		i++
	}
	return i
}

// jsonMemberName returns the name a quoted member name stands for, bytes
// that are not UTF-8 replaced as encoding/json does.
func jsonMemberName(quoted []byte) string {
	if bytes.IndexByte(quoted, '\\') < 0 && utf8.Valid(quoted) {
		return string(quoted[1 : len(quoted)-1])
	}
	var name string
	_ = json.Unmarshal(quoted, &name) // valid: data decoded
	return name
}

// payloadError checks a job's payload as it was sent, and returns the
// error of the field named field, or nil. tooLarge tells an error of size
// (413) from one of form (400).
func payloadError(field string, payload []byte, limit int64) (fe *FieldError, tooLarge bool) {
	if int64(len(payload)) > limit {
		return &FieldError{Field: field,
			Message: fmt.Sprintf("is %d bytes, over the limit of %d bytes", len(payload), limit)}, true
	}
	if !utf8.Valid(payload) {
		return &FieldError{Field: field, Message: "is not valid UTF-8"}, false
	}
	depth, number := payloadShape(payload)
	switch {
	case depth > MaxPayloadDepth:
		return &FieldError{Field: field,
			Message: fmt.Sprintf("nests arrays and objects %d levels deep, more than the limit of %d", depth, MaxPayloadDepth)}, false
	case number > MaxPayloadNumberLength:
		return &FieldError{Field: field,
			Message: fmt.Sprintf("holds a number of %d characters, more than the limit of %d", number, MaxPayloadNumberLength)}, false
	}
	return nil, false
}

// payloadShape measures valid JSON text in one pass: how deeply its arrays
// and objects nest, and the length of its longest number.
func payloadShape(text []byte) (depth, longestNumber int) {
	var (
		nesting, number   int
		inString, escaped bool
	)
	for _, c := range text {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			nesting++
			depth = max(depth, nesting)
		case ']', '}':
			nesting--
		}
		// Outside strings, these bytes only appear in numbers (and the e
		// of true and false, a run of one).
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			number++
			longestNumber = max(longestNumber, number)
		} else {
			number = 0
		}
	}
	return depth, longestNumber
}

// decodeJob decodes and checks one job, the body of POST /jobs or an
// element of a batch, and reports every problem it finds at once: its
// field errors (validation, payload), as a 413 when the payload is too
// large and a 400 otherwise.
func (s *Server) decodeJob(data []byte, req *SubmitRequest) error {
	if err := decodeStrict(data, req); err != nil {
		return err
	}
	var fields []FieldError
	if err := validationError(s.bodyBinding.validate.Struct(req)); err != nil {
		var reqErr *requestError
		if !errors.As(err, &reqErr) {
			return err
		}
		fields = append(fields, reqErr.fields...)
	}
	fields = append(fields, req.checkSchedule()...)
	fe, tooLarge := payloadError("payload", req.Payload, s.cfg.MaxPayloadBytes)
	if fe != nil {
		fields = append(fields, *fe)
	}
	if len(fields) == 0 {
		return nil
	}
	err := newValidationError(fields...)
	if tooLarge {
		err.kind = kindPayloadTooLarge
	}
	return err
}

// readBody reads the whole request body; the body limit middleware bounds
// it, and a body over the limit gives *http.MaxBytesError.
func readBody(body io.Reader) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	return io.ReadAll(body)
}
