package http

import (
	"bytes"
	"compress/gzip"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/actors"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.String()
}

func TestBodyMediaType(t *testing.T) {
	t.Parallel()
	const job = `{"type":"noop","payload":{"n":1}}`
	const batch = `{"jobs":[{"type":"noop","payload":{"n":1}}]}`

	accepted := map[string]string{
		"JSON":          "application/json",
		"JSONWithUTF8":  "application/json; charset=utf-8",
		"JSONUpperCase": "Application/JSON; charset=UTF-8",
		"VendorJSON":    "application/vnd.troupe.job+json",
		"NoContentType": "",
	}
	for name, contentType := range accepted {
		t.Run("Accepts"+name, func(t *testing.T) {
			t.Parallel()
			for _, target := range []string{"/jobs", "/jobs/batch"} {
				b := setup(t, Config{})
				var one actors.SubmitParams
				var many []actors.SubmitParams
				b.svc.SubmitFunc = submitted(t, &one)
				b.svc.SubmitBatchFunc = batchSubmitted(t, &many)
				body := job
				if target == "/jobs/batch" {
					body = batch
				}

				rec := b.do(t, request{method: "POST", target: target, body: body, header: map[string]string{"Content-Type": contentType}})

				require.Equal(t, nethttp.StatusCreated, rec.Code, "%s: %s", target, rec.Body.String())
				if target == "/jobs/batch" {
					require.Len(t, many, 1)
					one = many[0]
				}
				require.JSONEq(t, `{"n":1}`, string(one.Payload))
			}
		})
	}

	refused := map[string]string{
		"Form":          "application/x-www-form-urlencoded",
		"Text":          "text/plain",
		"Multipart":     "multipart/form-data; boundary=x",
		"XML":           "application/xml",
		"JSONInLatin1":  "application/json; charset=iso-8859-1",
		"Malformed":     "application/json; charset",
		"JSONLookalike": "application/jsonp",
	}
	for name, contentType := range refused {
		t.Run("Refuses"+name, func(t *testing.T) {
			t.Parallel()
			for _, target := range []string{"/jobs", "/jobs/batch"} {
				b := setup(t, Config{})

				rec := b.do(t, request{method: "POST", target: target, body: job, header: map[string]string{"Content-Type": contentType}})

				requireProblem(t, rec, nethttp.StatusUnsupportedMediaType, ProblemTypeUnsupportedMediaType)
			}
		})
	}
}

func TestBodyContentEncoding(t *testing.T) {
	t.Parallel()

	t.Run("GzipIsDecoded", func(t *testing.T) {
		t.Parallel()
		for _, coding := range []string{"gzip", "GZIP", "x-gzip", "identity, gzip"} {
			b := setup(t, Config{})
			var got []actors.SubmitParams
			b.svc.SubmitBatchFunc = batchSubmitted(t, &got)
			body := `{"jobs":[` + strings.Repeat(`{"type":"noop","payload":{"to":"ada@example.com"}},`, 99) + `{"type":"noop"}]}`

			rec := b.do(t, request{method: "POST", target: "/jobs/batch", body: gzipped(t, body),
				header: map[string]string{"Content-Encoding": coding}})

			require.Equal(t, nethttp.StatusCreated, rec.Code, "%s: %s", coding, rec.Body.String())
			require.Len(t, got, 100)
		}
	})

	t.Run("IdentityIsNoCoding", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		var got actors.SubmitParams
		b.svc.SubmitFunc = submitted(t, &got)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`,
			header: map[string]string{"Content-Encoding": "identity"}})

		require.Equal(t, nethttp.StatusCreated, rec.Code, rec.Body.String())
	})

	t.Run("PlainBodyLabelledGzipIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "POST", target: "/jobs", body: `{"type":"noop"}`,
			header: map[string]string{"Content-Encoding": "gzip"}})

		p := requireProblem(t, rec, nethttp.StatusBadRequest, ProblemTypeInvalidRequest)
		require.Contains(t, p.Detail, "gzip")
	})

	t.Run("LimitAppliesToTheDecodedBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{MaxBodyBytes: 4096})
		// 1 MiB of JSON that compresses to about a kilobyte.
		body := `{"type":"noop","payload":"` + strings.Repeat("a", 1<<20) + `"}`
		compressed := gzipped(t, body)
		require.Less(t, len(compressed), 4096)

		rec := b.do(t, request{method: "POST", target: "/jobs", body: compressed,
			header: map[string]string{"Content-Encoding": "gzip"}})

		p := requireProblem(t, rec, nethttp.StatusRequestEntityTooLarge, ProblemTypePayloadTooLarge)
		require.Contains(t, p.Detail, "4096")
	})

	t.Run("OtherCodingsAreRefused", func(t *testing.T) {
		t.Parallel()
		for _, coding := range []string{"deflate", "br", "zstd", "compress", "gzip, gzip", "gzip, br"} {
			for _, target := range []string{"/jobs", "/jobs/batch"} {
				b := setup(t, Config{})

				rec := b.do(t, request{method: "POST", target: target, body: `{"type":"noop"}`,
					header: map[string]string{"Content-Encoding": coding}})

				p := requireProblem(t, rec, nethttp.StatusUnsupportedMediaType, ProblemTypeUnsupportedMediaType)
				require.Contains(t, p.Detail, "Content-Encoding")
				require.Equal(t, "gzip", rec.Header().Get("Accept-Encoding"))
			}
		}
	})
}
