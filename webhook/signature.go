package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header that carries a request's signature.
const SignatureHeader = "Troupe-Signature"

// DefaultTolerance is how far a signature's time may be from the
// receiver's clock when Verify is given no tolerance: enough for clock
// skew and a slow network, too little to replay a captured request much
// later.
const DefaultTolerance = 5 * time.Minute

// ErrInvalidSignature: a request's Troupe-Signature is missing, malformed,
// does not match its body, or is too old.
var ErrInvalidSignature = errors.New("invalid webhook signature")

// Sign returns the Troupe-Signature header value of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header, a request's Troupe-Signature, against its raw
// body and secret: one of its v1 signatures must match (several are
// allowed, for a secret being rotated), and its time must be within
// tolerance of now (DefaultTolerance when tolerance is 0 or less), so that
// a captured request cannot be replayed later. Any failure wraps
// ErrInvalidSignature and says why; the comparison takes constant time.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret to check it with", ErrInvalidSignature)
	}
	if header == "" {
		return fmt.Errorf("%w: no %s header", ErrInvalidSignature, SignatureHeader)
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed element %q", ErrInvalidSignature, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one timestamp", ErrInvalidSignature)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256 HMAC", ErrInvalidSignature)
			}
			sigs = append(sigs, sig)
		}
		// Other schemes are ignored, so that a newer sender still
		// verifies here.
	}
	if ts == "" {
		return fmt.Errorf("%w: no timestamp", ErrInvalidSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a number of seconds", ErrInvalidSignature, ts)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrInvalidSignature)
	}
	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%w: no signature matches the body", ErrInvalidSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s from now, more than the %s tolerated", ErrInvalidSignature, age.Round(time.Second), tolerance)
	}
	return nil
}
