package http

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

// uiFiles is the dashboard: plain HTML, CSS and JavaScript with no build
// step, served from the binary so that it works offline and needs nothing
// installed.
//
//go:embed ui
var uiFiles embed.FS

// uiDir is the dashboard's directory in uiFiles; its files are served at
// /ui/assets/<name>, except index.html.
const uiDir = "ui"

// uiContentSecurityPolicy lets the dashboard load only its own files and
// talk only to this server, so that neither a job's payload nor an error
// message can run script or send data elsewhere.
const uiContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// registerUIRoutes serves the dashboard at / and at every /ui/ path, where
// the page's script routes on the URL (/ui/jobs/{id} is a job's page), and
// its files at /ui/assets/. Like /docs, the pages need no token: they hold
// no data, and the script asks for a token when the API wants one.
func registerUIRoutes(r gin.IRoutes) error {
	entries, err := fs.ReadDir(uiFiles, uiDir)
	if err != nil {
		return fmt.Errorf("http: embedded dashboard: %w", err)
	}
	assets := make(map[string]staticAsset, len(entries))
	for _, e := range entries {
		a, err := newUIAsset(e.Name())
		if err != nil {
			return err
		}
		assets[e.Name()] = a
	}
	index, ok := assets["index.html"]
	if !ok {
		return fmt.Errorf("http: embedded dashboard: %s/index.html is missing", uiDir)
	}
	delete(assets, "index.html")

	page := func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", uiContentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		index.serve(c)
	}
	r.GET("/", page)
	r.GET("/ui", page)
	r.GET("/ui/*path", func(c *gin.Context) {
		name, isAsset := strings.CutPrefix(c.Param("path"), "/assets/")
		if !isAsset {
			page(c)
			return
		}
		a, ok := assets[name]
		if !ok {
			writeProblem(c, kindNotFound.problem("no dashboard file "+name, nil))
			return
		}
		a.serve(c)
	})
	return nil
}

// newUIAsset reads a dashboard file, with a content type from its
// extension and an ETag from its content.
func newUIAsset(name string) (staticAsset, error) {
	data, err := uiFiles.ReadFile(path.Join(uiDir, name))
	if err != nil {
		return staticAsset{}, fmt.Errorf("http: embedded dashboard: %w", err)
	}
	contentType := mime.TypeByExtension(path.Ext(name))
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	sum := sha256.Sum256(data)
	return staticAsset{
		name:        name,
		contentType: contentType,
		data:        data,
		etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
	}, nil
}
