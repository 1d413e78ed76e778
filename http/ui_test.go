package http

import (
	"io/fs"
	nethttp "net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDashboardRoutes(t *testing.T) {
	t.Parallel()

	pages := []string{"/", "/ui", "/ui/", "/ui/jobs/0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11", "/ui/schedules", "/ui/anything/else"}
	for _, target := range pages {
		t.Run("Page"+target, func(t *testing.T) {
			t.Parallel()
			// With tokens configured the page is still open: it holds no
			// data, and its script asks for a token.
			b := setup(t, Config{APITokens: []string{"secret"}})
			rec := b.do(t, request{method: "GET", target: target})
			require.Equal(t, nethttp.StatusOK, rec.Code)
			require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
			require.Equal(t, uiContentSecurityPolicy, rec.Header().Get("Content-Security-Policy"))
			require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
			require.NotEmpty(t, rec.Header().Get("ETag"))
			require.Contains(t, rec.Body.String(), `<script src="/ui/assets/app.js" defer></script>`)
		})
	}

	assets := map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"app.css":     "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	}
	for name, contentType := range assets {
		t.Run("Asset/"+name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{APITokens: []string{"secret"}})
			rec := b.do(t, request{method: "GET", target: "/ui/assets/" + name})
			require.Equal(t, nethttp.StatusOK, rec.Code)
			require.Equal(t, contentType, rec.Header().Get("Content-Type"))
			etag := rec.Header().Get("ETag")
			require.NotEmpty(t, etag)

			again := b.do(t, request{method: "GET", target: "/ui/assets/" + name, header: map[string]string{"If-None-Match": etag}})
			require.Equal(t, nethttp.StatusNotModified, again.Code)
		})
	}

	t.Run("MissingAssetIs404", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		requireProblem(t, b.do(t, request{method: "GET", target: "/ui/assets/nope.js"}), nethttp.StatusNotFound, ProblemTypeNotFound)
	})
}

// TestDashboardIsSelfContained checks that the dashboard loads nothing from
// elsewhere (it must work offline and under its Content-Security-Policy)
// and that its script never parses data as HTML.
func TestDashboardIsSelfContained(t *testing.T) {
	t.Parallel()
	// The SVG namespace is a name, not something to fetch.
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(uiFiles, uiDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := uiFiles.ReadFile(path)
		require.NoError(t, err)
		text := strings.ReplaceAll(string(data), "http://www.w3.org/2000/svg", "")
		require.Empty(t, external.FindAllString(text, -1), "%s refers to another host", path)
		if strings.HasSuffix(path, ".js") {
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
				require.NotContains(t, text, sink, "%s must build the page from text, not HTML", path)
			}
		}
		return nil
	})
	require.NoError(t, err)
}
