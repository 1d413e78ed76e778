package http

import (
	"bytes"
	nethttp "net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDocs(t *testing.T) {
	t.Parallel()

	t.Run("OpenAPIDocument", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})

		rec := b.do(t, request{method: "GET", target: "/openapi.yaml"})

		require.Equal(t, nethttp.StatusOK, rec.Code)
		require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
		require.Equal(t, OpenAPISpec(), rec.Body.Bytes())
		require.True(t, bytes.HasPrefix(rec.Body.Bytes(), []byte("openapi: 3.0.3\n")))
	})

	t.Run("SwaggerUIPage", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		for _, path := range []string{"/docs", "/docs/"} {
			rec := b.do(t, request{method: "GET", target: path})

			require.Equal(t, nethttp.StatusOK, rec.Code, path)
			require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
			body := rec.Body.String()
			require.Contains(t, body, `<div id="swagger-ui">`)
			require.Contains(t, body, `src="/docs/swagger-ui-bundle.js"`)
		}
	})

	t.Run("EveryAssetTheUINeedsIsServed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		index := b.do(t, request{method: "GET", target: "/docs"}).Body.String()
		refs := regexp.MustCompile(`(?:href|src)="([^"]+)"`).FindAllStringSubmatch(index, -1)
		require.Len(t, refs, 5)
		for _, ref := range refs {
			require.True(t, strings.HasPrefix(ref[1], "/docs/"), "the page loads nothing from elsewhere: %s", ref[1])
			rec := b.do(t, request{method: "GET", target: ref[1]})
			require.Equal(t, nethttp.StatusOK, rec.Code, ref[1])
			require.NotZero(t, rec.Body.Len(), ref[1])
		}
		initializer := b.do(t, request{method: "GET", target: "/docs/swagger-initializer.js"})
		require.Contains(t, initializer.Body.String(), `url: "/openapi.yaml"`)
		require.Contains(t, initializer.Body.String(), `validatorUrl: null`)
	})

	t.Run("ContentTypes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		tests := map[string]string{
			"/docs/swagger-ui.css":       "text/css",
			"/docs/swagger-ui-bundle.js": "text/javascript",
			"/docs/favicon-32x32.png":    "image/png",
			"/docs/LICENSE":              "text/plain",
		}
		for path, want := range tests {
			rec := b.do(t, request{method: "GET", target: path})

			require.Equal(t, nethttp.StatusOK, rec.Code, path)
			require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), want), "%s: %s", path, rec.Header().Get("Content-Type"))
		}
	})

	t.Run("NotModifiedWithETag", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		first := b.do(t, request{method: "GET", target: "/docs/swagger-ui.css"})
		etag := first.Header().Get("ETag")
		require.NotEmpty(t, etag)

		again := b.do(t, request{method: "GET", target: "/docs/swagger-ui.css", header: map[string]string{"If-None-Match": etag}})

		require.Equal(t, nethttp.StatusNotModified, again.Code)
		require.Zero(t, again.Body.Len())
	})
}
