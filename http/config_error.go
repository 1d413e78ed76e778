package http

import (
	"fmt"
	"strconv"
)

// ConfigError is one field of Config out of bounds, as Config.Validate
// reports it (joined with the others). It names the Go field, so that a
// program that builds Config from options of its own can tell its user
// which option is wrong in the option's own terms.
type ConfigError struct {
	// Field is the name of the Config field, such as "MaxBodyBytes".
	Field string
	// Index is the item of a list field (APITokens) that is wrong, or -1.
	Index int
	// Value is the field's value, or nil when it is a secret (a token).
	Value any
	// Reason says what is wrong, such as "must be at least 1".
	Reason string
}

// Error names the field, shows its value unless it is secret, and says
// what is wrong.
func (e *ConfigError) Error() string {
	name := e.Field
	if e.Index >= 0 {
		name = fmt.Sprintf("%s[%d]", name, e.Index)
	}
	if e.Value == nil {
		return fmt.Sprintf("http: %s %s", name, e.Reason)
	}
	value := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		value = strconv.Quote(s)
	}
	return fmt.Sprintf("http: invalid %s %s: %s", name, value, e.Reason)
}
