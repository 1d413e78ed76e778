package webhook_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/webhook"
)

func TestSignature(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec_test")
	body := []byte(`{"id":"x","type":"t","attempt":1,"payload":{}}`)
	at := time.Unix(1_700_000_000, 0)
	header := webhook.Sign(secret, at, body)
	require.True(t, strings.HasPrefix(header, "t=1700000000,v1="), header)
	require.Len(t, strings.TrimPrefix(header, "t=1700000000,v1="), 64)
	// Computed apart, with Python's hmac: HMAC-SHA256 of "<t>.<body>", in hex.
	require.Equal(t, "t=1700000000,v1=791024cae27f2eeb558c73377d335cd68560ce9b53d0c90fc08b30c6ca5a60ff", header)

	require.NoError(t, webhook.Verify(secret, header, body, at, time.Minute))
	require.NoError(t, webhook.Verify(secret, header, body, at.Add(4*time.Minute), 0), "default tolerance is 5 minutes")
	require.NoError(t, webhook.Verify(secret, " "+strings.ReplaceAll(header, ",", " , ")+",v0=zz", body, at, time.Minute),
		"spaces and unknown schemes are tolerated")

	other := webhook.Sign([]byte("old secret"), at, body)
	rotated := header + ",v1=" + strings.SplitN(other, "v1=", 2)[1]
	require.NoError(t, webhook.Verify([]byte("old secret"), rotated, body, at, time.Minute), "any v1 may match")

	for name, tc := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
		why    string
	}{
		"WrongSecret":   {[]byte("nope"), header, body, at, "no signature matches"},
		"TamperedBody":  {secret, header, []byte(`{"id":"y"}`), at, "no signature matches"},
		"TooOld":        {secret, header, body, at.Add(2 * time.Minute), "more than the 1m0s tolerated"},
		"FromTheFuture": {secret, header, body, at.Add(-2 * time.Minute), "more than the 1m0s tolerated"},
		"NoHeader":      {secret, "", body, at, "no Troupe-Signature header"},
		"NoSecret":      {nil, header, body, at, "no secret"},
		"NoTimestamp":   {secret, "v1=" + strings.SplitN(header, "v1=", 2)[1], body, at, "no timestamp"},
		"ShortV1":       {secret, "t=abc,v1=00", body, at, "v1 is not a hex"},
		"NotANumber":    {secret, strings.Replace(header, "t=1700000000", "t=17e8", 1), body, at, "not a number"},
		"NoV1":          {secret, "t=1700000000", body, at, "no v1 signature"},
		"Malformed":     {secret, "garbage", body, at, "malformed"},
		"ShiftedTime": {secret, strings.Replace(header, "t=1700000000", "t="+strconv.Itoa(1_700_000_001), 1), body,
			at, "no signature matches"},
	} {
		t.Run(name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, time.Minute)
			require.ErrorIs(t, err, webhook.ErrInvalidSignature)
			require.ErrorContains(t, err, tc.why)
		})
	}
}
