package http

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// queueNameRule is the message of a queue name that breaks the rule.
const queueNameRule = "must match ^[a-z0-9][a-z0-9_-]{0,63}$"

// durationExample is the end of the message of an unparsable duration.
const durationExample = `must be a Go duration such as "90s" or "1h30m"`

// checkSchedule parses the fields that say when, where and how a job runs
// (runAt, delay, priority, queue, uniqueKey, uniqueFor, timeout, key), keeps
// their values for params, and returns the errors of those that break
// their rules, in the order of the fields.
func (r *SubmitRequest) checkSchedule() []FieldError {
	var fields []FieldError
	bad := func(field, msg string, args ...any) {
		fields = append(fields, FieldError{Field: field, Message: fmt.Sprintf(msg, args...)})
	}
	p := &r.sched
	if r.RunAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *r.RunAt)
		switch {
		case err != nil:
			bad("runAt", "must be an RFC 3339 time such as 2025-03-01T09:30:00Z")
		case r.Delay != nil:
			bad("runAt", "must not be given together with delay")
		default:
			p.RunAt = t
		}
	}
	if r.Delay != nil {
		d, err := time.ParseDuration(*r.Delay)
		switch {
		case err != nil:
			bad("delay", durationExample)
		case d < 0:
			bad("delay", "must not be negative")
		case d > actors.MaxDelay:
			bad("delay", "must be at most a year (%s)", actors.MaxDelay)
		default:
			p.Delay = d
		}
	}
	p.Priority = checkPriority(r.Priority, bad)
	p.Queue = checkQueue(r.Queue, bad)
	if r.UniqueKey != nil {
		switch n := len(*r.UniqueKey); {
		case n == 0:
			bad("uniqueKey", "must not be empty")
		case n > domain.MaxUniqueKeyLength:
			bad("uniqueKey", "is %d bytes, more than %d", n, domain.MaxUniqueKeyLength)
		default:
			p.UniqueKey = *r.UniqueKey
		}
	}
	if r.UniqueFor != nil {
		d, err := time.ParseDuration(*r.UniqueFor)
		switch {
		case err != nil:
			bad("uniqueFor", durationExample)
		case d < 0:
			bad("uniqueFor", "must not be negative")
		case r.UniqueKey == nil:
			bad("uniqueFor", "needs a uniqueKey")
		default:
			p.UniqueFor = d
		}
	}
	p.Timeout = checkTimeout(r.Timeout, bad)
	if r.Key != nil {
		if msg := keyError(*r.Key); msg != "" {
			bad("key", "%s", msg)
		} else {
			p.Key = *r.Key
		}
	}
	return fields
}

// keyError says what is wrong with a job's key (domain.ValidateKey), or
// "".
func keyError(key string) string {
	switch {
	case key == "":
		return "must not be empty"
	case len(key) > domain.MaxKeyLength:
		return fmt.Sprintf("is %d bytes, more than %d", len(key), domain.MaxKeyLength)
	case !utf8.ValidString(key):
		return "is not valid UTF-8"
	case strings.ContainsRune(key, 0):
		return "must not contain NUL"
	case domain.ValidateKey(key) != nil:
		// A rule of the domain's that this list has not caught up with.
		return invalidMessage(domain.ValidateKey(key))
	}
	return ""
}

// The checks of the members a submission and a schedule's job share. Each
// reports a member that breaks its rule to bad, by its name, and returns
// its value: the zero value when absent or refused.

func checkPriority(v *int, bad func(field, msg string, args ...any)) int {
	if v == nil {
		return 0
	}
	if *v < domain.MinPriority || *v > domain.MaxPriority {
		bad("priority", "must be from %d (first) to %d (last)", domain.MinPriority, domain.MaxPriority)
		return 0
	}
	return *v
}

func checkQueue(v *string, bad func(field, msg string, args ...any)) string {
	if v == nil {
		return ""
	}
	if domain.ValidateQueueName(*v) != nil {
		bad("queue", queueNameRule)
		return ""
	}
	return *v
}

// checkTimeout reads an attempt timeout; "0s" means none (NoTimeout).
func checkTimeout(v *string, bad func(field, msg string, args ...any)) time.Duration {
	if v == nil {
		return 0
	}
	d, err := time.ParseDuration(*v)
	switch {
	case err != nil:
		bad("timeout", durationExample+`, or "0s" for none`)
	case d < 0:
		bad("timeout", "must not be negative")
	case d == 0:
		return actors.NoTimeout
	default:
		return d
	}
	return 0
}
