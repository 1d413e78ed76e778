package actors

import (
	"math/rand/v2"
	"time"
)

// Jitter says how retry backoffs are randomized. The zero value is
// FullJitter, the default.
type Jitter int

const (
	// FullJitter draws each delay uniformly from [0, base·2^(attempt-1)],
	// capped: it spreads a burst of failures over the whole window instead
	// of retrying in waves.
	FullJitter Jitter = iota
	// NoJitter makes each delay exactly base·2^(attempt-1), capped.
	NoJitter
)

// Backoff computes the delay before a retry: base·2^(attempt-1), capped at
// max, and with FullJitter a uniform draw in [0, that].
type Backoff struct {
	Base, Max time.Duration
	Jitter    Jitter
	// Random returns a float in [0, 1); nil means math/rand/v2.
	Random func() float64
}

// Delay returns how long to wait, after attempt number attempt (1-based)
// failed, before the next one.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 1 {
		attempt = 1
	}
	// Shifting past 62 bits overflows; by then the cap has long applied.
	if shift := attempt - 1; shift < 62 {
		if exp := b.Base << shift; exp > 0 && exp>>shift == b.Base && exp < b.Max {
			d = exp
		}
	}
	if b.Jitter == NoJitter {
		return d
	}
	random := b.Random
	if random == nil {
		random = rand.Float64
	}
	return time.Duration(random() * float64(d))
}
