package domain

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Flow control: a queue's settings bound how many of its jobs run at once
// and how fast they start, across every node sharing the store, as a whole
// and per job key. A queue without settings pays nothing for them.

// MaxKeyLength bounds a job's key, in bytes.
const MaxKeyLength = 255

// ValidateKey checks a job's key: 1 to MaxKeyLength bytes of UTF-8
// without NUL (PostgreSQL's text refuses NUL). The empty key means "no
// key" and is checked by the caller, not here.
func ValidateKey(key string) error {
	switch {
	case key == "" || len(key) > MaxKeyLength:
		return fmt.Errorf("%w: key must be 1 to %d bytes, got %d", ErrInvalid, MaxKeyLength, len(key))
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key must be UTF-8", ErrInvalid)
	}
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return fmt.Errorf("%w: key must not contain NUL", ErrInvalid)
		}
	}
	return nil
}

// The bounds of flow settings.
const (
	// MaxFlowCount bounds a limit, a rate's count and its burst.
	MaxFlowCount = 1_000_000
	// MinRatePer and MaxRatePer bound a rate's period.
	MinRatePer = time.Millisecond
	MaxRatePer = 24 * time.Hour
)

// QueueSettings are a queue's flow settings, stored with the queue and
// shared by every node. The zero value sets nothing: the queue's jobs
// start as fast as workers take them.
type QueueSettings struct {
	// Limit caps how many of the queue's jobs run at once, across all
	// nodes; 0 means no cap. A node's own cap (the runtime's per-node
	// queue limits) still applies on that node.
	Limit int
	// Rate caps how many of the queue's attempts start per period, across
	// all nodes; nil means no cap.
	Rate *Rate
	// PerKey applies a limit and a rate to each distinct Job.Key of the
	// queue separately; jobs without a key are not subject to it.
	PerKey *KeyLimits
	// Ordered (only with PerKey.Limit 1) starts a key's jobs one after the
	// other in order: a job that already started (waiting for its retry,
	// or pending again) goes first, then by RunAt, then submission; while
	// a job of the key waits for a retry, the key's other jobs wait. A job
	// that ends (completed, failed after its last attempt, or canceled)
	// lets the next one start: a failure does not block its key for ever.
	Ordered bool
	// Fair takes the queue's ready jobs round-robin across keys (jobs
	// without a key count as one more key), then by priority, RunAt and
	// submission within a key, so that a key with many jobs does not delay
	// a key with few.
	Fair bool
}

// Rate is a token bucket: Count starts per Per on average, with bursts of
// up to Burst (0 means Count). Each attempt's start takes a token; the
// bucket refills continuously and starts full.
type Rate struct {
	Count int
	Per   time.Duration
	Burst int
}

// KeyLimits are the limits a queue applies to each key separately.
type KeyLimits struct {
	// Limit caps how many jobs of one key run at once; 0 means no cap.
	Limit int
	// Rate caps how many attempts of one key start per period; nil means
	// no cap.
	Rate *Rate
}

// BurstSize is the bucket's capacity: Burst, or Count when Burst is 0.
func (r Rate) BurstSize() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Count
}

// Interval is the time one token takes to refill.
func (r Rate) Interval() time.Duration { return r.Per / time.Duration(r.Count) }

// Refill returns the tokens of a bucket that held tokens at last, at now:
// refilled at Count per Per, capped at BurstSize. A now before last (a
// clock that went back) refills nothing.
func (r Rate) Refill(tokens float64, last, now time.Time) float64 {
	if elapsed := now.Sub(last); elapsed > 0 {
		tokens += float64(elapsed) * float64(r.Count) / float64(r.Per)
	}
	return math.Min(tokens, float64(r.BurstSize()))
}

// TokenDue returns how long a bucket holding tokens (fewer than 1) waits
// for its next token.
func (r Rate) TokenDue(tokens float64) time.Duration {
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(r.Per) / float64(r.Count)))
}

// IsZero reports whether the settings set nothing.
func (s QueueSettings) IsZero() bool {
	return s.Limit == 0 && s.Rate == nil && s.PerKey == nil && !s.Ordered && !s.Fair
}

// Keyed reports whether the settings look at job keys.
func (s QueueSettings) Keyed() bool { return s.PerKey != nil || s.Fair }

// Clone returns a deep copy.
func (s QueueSettings) Clone() QueueSettings {
	if s.Rate != nil {
		r := *s.Rate
		s.Rate = &r
	}
	if s.PerKey != nil {
		k := *s.PerKey
		if k.Rate != nil {
			r := *k.Rate
			k.Rate = &r
		}
		s.PerKey = &k
	}
	return s
}

// Equal reports whether s and o set the same.
func (s QueueSettings) Equal(o QueueSettings) bool {
	return s.Limit == o.Limit && s.Ordered == o.Ordered && s.Fair == o.Fair &&
		rateEqual(s.Rate, o.Rate) && keyLimitsEqual(s.PerKey, o.PerKey)
}

func rateEqual(a, b *Rate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func keyLimitsEqual(a, b *KeyLimits) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Limit == b.Limit && rateEqual(a.Rate, b.Rate)
}

// SettingError is a setting refused for one field, named as in the HTTP
// API's JSON ("limit", "rate.count", "perKey.rate.per", "ordered"...). It
// wraps ErrInvalid.
type SettingError struct {
	Field string
	Err   error
}

func (e *SettingError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *SettingError) Unwrap() error { return e.Err }

func badSetting(field, format string, args ...any) error {
	return &SettingError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

// Validate checks the settings and returns every field it refuses, each
// a *SettingError, joined (errors.Join); nil when they are valid.
func (s QueueSettings) Validate() error {
	var errs []error
	if s.Limit < 0 || s.Limit > MaxFlowCount {
		errs = append(errs, badSetting("limit", "must be between 0 and %d, got %d", MaxFlowCount, s.Limit))
	}
	errs = append(errs, validateRate("rate", s.Rate)...)
	if s.PerKey != nil {
		if s.PerKey.Limit < 0 || s.PerKey.Limit > MaxFlowCount {
			errs = append(errs, badSetting("perKey.limit", "must be between 0 and %d, got %d", MaxFlowCount, s.PerKey.Limit))
		}
		errs = append(errs, validateRate("perKey.rate", s.PerKey.Rate)...)
		if s.PerKey.Limit == 0 && s.PerKey.Rate == nil {
			errs = append(errs, badSetting("perKey", "needs a limit or a rate"))
		}
	}
	if s.Ordered && (s.PerKey == nil || s.PerKey.Limit != 1) {
		errs = append(errs, badSetting("ordered", "needs perKey.limit 1: a key's jobs run one at a time to run in order"))
	}
	return errors.Join(errs...)
}

func validateRate(field string, r *Rate) []error {
	if r == nil {
		return nil
	}
	var errs []error
	if r.Count < 1 || r.Count > MaxFlowCount {
		errs = append(errs, badSetting(field+".count", "must be between 1 and %d, got %d", MaxFlowCount, r.Count))
	}
	if r.Per < MinRatePer || r.Per > MaxRatePer {
		errs = append(errs, badSetting(field+".per", "must be a duration between %s and %s, got %s", MinRatePer, MaxRatePer, r.Per))
	}
	if r.Burst < 0 || r.Burst > MaxFlowCount {
		errs = append(errs, badSetting(field+".burst", "must be between 0 (the count) and %d, got %d", MaxFlowCount, r.Burst))
	}
	return errs
}

// WaitReason says why a pending job, due now, does not start: its queue's
// or its key's flow settings hold it back. The empty reason means nothing
// does (it waits for a worker, or is not pending).
type WaitReason string

// The reasons a pending job waits, in the order they are checked: a job
// held back by several is given the first.
const (
	// WaitQueueLimit: the queue runs Limit jobs already.
	WaitQueueLimit WaitReason = "queue limit"
	// WaitQueueRate: the queue's bucket is empty.
	WaitQueueRate WaitReason = "queue rate"
	// WaitKeyLimit: the job's key runs PerKey.Limit jobs already.
	WaitKeyLimit WaitReason = "key limit"
	// WaitKeyOrder: an earlier job of the key must start (or finish its
	// retries) first.
	WaitKeyOrder WaitReason = "key order"
	// WaitKeyRate: the key's bucket is empty.
	WaitKeyRate WaitReason = "key rate"
)

// WaitReasons lists every reason, in the order they are checked.
var WaitReasons = []WaitReason{WaitQueueLimit, WaitQueueRate, WaitKeyLimit, WaitKeyOrder, WaitKeyRate}

// WaitingCount is how many pending jobs of a queue, due now, wait for one
// reason.
type WaitingCount struct {
	Queue  string
	Reason WaitReason
	Count  int
}
