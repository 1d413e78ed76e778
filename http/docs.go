package http

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"mime"
	nethttp "net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"
)

// staticFiles holds the OpenAPI document and Swagger UI, so that the binary
// serves its own documentation offline. assets/swagger/README.md says where
// the Swagger UI files come from.
//
//go:embed openapi.yaml
//go:embed assets/swagger/index.html assets/swagger/swagger-initializer.js
//go:embed assets/swagger/swagger-ui.css assets/swagger/swagger-ui-bundle.js
//go:embed assets/swagger/favicon-16x16.png assets/swagger/favicon-32x32.png
//go:embed assets/swagger/LICENSE assets/swagger/NOTICE assets/swagger/swagger-ui-bundle.js.LICENSE.txt
var staticFiles embed.FS

// openAPIPath is the embedded OpenAPI document.
const openAPIPath = "openapi.yaml"

// swaggerDir holds the Swagger UI files, each served at /docs/<name>.
const swaggerDir = "assets/swagger"

// OpenAPISpec returns the OpenAPI 3.0 document that GET /openapi.yaml
// serves, for tools and clients built with this package.
func OpenAPISpec() []byte {
	b, err := staticFiles.ReadFile(openAPIPath)
	if err != nil {
		panic(fmt.Sprintf("http: embedded %s is missing: %v", openAPIPath, err))
	}
	return b
}

// staticAsset is an embedded file ready to serve, with an ETag so that
// browsers revalidate instead of downloading it again.
type staticAsset struct {
	name        string
	contentType string
	data        []byte
	etag        string
}

func newStaticAsset(name, contentType string) (staticAsset, error) {
	data, err := staticFiles.ReadFile(name)
	if err != nil {
		return staticAsset{}, fmt.Errorf("http: embedded asset: %w", err)
	}
	if contentType == "" {
		contentType = mime.TypeByExtension(path.Ext(name))
	}
	if contentType == "" {
		contentType = "text/plain; charset=utf-8"
	}
	sum := sha256.Sum256(data)
	return staticAsset{
		name:        path.Base(name),
		contentType: contentType,
		data:        data,
		etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
	}, nil
}

// serve answers with the asset, or 304 when the client's copy is current.
func (a staticAsset) serve(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	// The assets are small: always send them whole. ServeContent would
	// answer a Range or a failed precondition in plain text, and every
	// error of the API is problem+json.
	req := c.Request.Clone(c.Request.Context())
	for _, name := range []string{"Range", "If-Range", "If-Match", "If-Unmodified-Since"} {
		req.Header.Del(name)
	}
	nethttp.ServeContent(c.Writer, req, a.name, time.Time{}, bytes.NewReader(a.data))
}

// registerDocsRoutes adds GET /openapi.yaml and Swagger UI at /docs.
func registerDocsRoutes(r gin.IRoutes) error {
	spec, err := newStaticAsset(openAPIPath, "application/yaml")
	if err != nil {
		return err
	}
	r.GET("/openapi.yaml", spec.serve)

	entries, err := staticFiles.ReadDir(swaggerDir)
	if err != nil {
		return fmt.Errorf("http: embedded assets: %w", err)
	}
	for _, e := range entries {
		a, err := newStaticAsset(path.Join(swaggerDir, e.Name()), "")
		if err != nil {
			return err
		}
		if e.Name() == "index.html" {
			r.GET("/docs", a.serve)
			r.GET("/docs/", a.serve)
			continue
		}
		r.GET("/docs/"+e.Name(), a.serve)
	}
	return nil
}
