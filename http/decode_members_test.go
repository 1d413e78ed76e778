package http

import (
	"bytes"
	"cmp"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// memberErrorsByTokens is memberErrors written with encoding/json's
// tokenizer: slower, and plainly right, so the scan is checked against it.
func memberErrorsByTokens(data []byte, t reflect.Type) []FieldError {
	if t.Kind() != reflect.Struct {
		return nil
	}
	known := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "-" && f.IsExported() {
			known[cmp.Or(name, f.Name)] = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil // null: nothing to check
	}
	var fields []FieldError
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fields
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return fields
		}
		switch {
		case !known[name]:
			fields = append(fields, FieldError{Field: name, Message: "is not a known field"})
		case seen[name]:
			fields = append(fields, FieldError{Field: name, Message: "appears more than once"})
		case value[0] == '"' && !utf8.Valid(value):
			fields = append(fields, FieldError{Field: name, Message: "is not valid UTF-8"})
		}
		seen[name] = true
	}
	return fields
}

// FuzzMemberErrors: on any JSON object, memberErrors finds what the
// tokenizer finds: unknown and repeated members and strings that are not
// UTF-8, in order, whatever the spacing, escapes and nesting.
func FuzzMemberErrors(f *testing.F) {
	for _, seed := range []string{
		`{"type":"send_email","payload":{"to":"ada@example.com"},"maxAttempts":5}`,
		` { "type" : "a" , "payload" : [1, {"x": "]}"}, "\\\""] , "Type": 1 } `,
		`{"type":"a","type":"b","extra":null,"runAt":"2026-01-01T00:00:00Z"}`,
		`{"ty\u0070e":"a","payload":true,"queue":false,"priority":-1.5e3}`,
		"{\"type\":\"\xff\",\"queue\":\"ok\",\"key\":\"\xc3\"}",
		`{"payload":"x\\"}`,
		`{}`,
		`null`,
		"\t{\n\"type\"\r:\"a\"}\n",
	} {
		f.Add([]byte(seed))
	}
	typ := reflect.TypeFor[SubmitRequest]()
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if !json.Valid(data) || json.Unmarshal(data, &v) != nil {
			return
		}
		if _, isObject := v.(map[string]any); !isObject && v != nil {
			return
		}
		require.Equal(t, memberErrorsByTokens(data, typ), memberErrors(data, typ), "%q", data)
	})
}
