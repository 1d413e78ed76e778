package actors

import (
	"fmt"
	"strings"
	"unicode"
)

// ConfigError is one field of Config out of bounds, as Config.Validate
// reports it (joined with the others). It names the field as the Go field
// is named, so that a program that builds Config from options of its own
// can tell its user which option is wrong in the option's own terms.
type ConfigError struct {
	// Field is the name of the Config field, such as "Workers".
	Field string
	// Value is the field's value.
	Value any
	// Reason says what the value must be, such as "must be at least 1".
	Reason string
	// Than, when set, names the field that Reason compares Value with
	// (as in "must not be below" RetryBaseDelay); ThanValue is its value.
	Than      string
	ThanValue any
}

// Error says which field is wrong, what it must be and what it is.
func (e *ConfigError) Error() string {
	reason := e.Reason
	if e.Than != "" {
		reason = fmt.Sprintf("%s %s (%v)", reason, fieldWords(e.Than), e.ThanValue)
	}
	value := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		value = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%s %s, got %s", fieldWords(e.Field), reason, value)
}

// fieldWords spells a field's name as words: RetryMaxDelay is "retry max
// delay".
func fieldWords(field string) string {
	var b strings.Builder
	for i, r := range field {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
