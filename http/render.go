package http

import (
	"bytes"
	"encoding/json"
	nethttp "net/http"

	"github.com/gin-gonic/gin"
)

// jsonContentType is the media type of the JSON answers.
const jsonContentType = "application/json; charset=utf-8"

// jsonLine renders a value as JSON followed by a newline, so that a body
// read with curl or appended to a file ends its line. gin's own JSON
// render adds none. Like it, it escapes <, > and &, and keeps a
// Content-Type already set (problem+json).
type jsonLine struct {
	data any
}

// Render writes the value, or nothing when it does not encode.
func (r jsonLine) Render(w nethttp.ResponseWriter) error {
	r.WriteContentType(w)
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(r.data); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteContentType sets application/json unless a type is already set.
func (jsonLine) WriteContentType(w nethttp.ResponseWriter) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", jsonContentType)
	}
}

// writeJSON answers status with v as one line of JSON. Use it instead of
// c.JSON.
func writeJSON(c *gin.Context, status int, v any) {
	c.Render(status, jsonLine{data: v})
}
