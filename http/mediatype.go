package http

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	nethttp "net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// acceptJSONBody guards the routes that read a JSON body. It refuses with
// 415 a body declared as anything but JSON (application/json or a +json
// type, in UTF-8), and one in a content coding other than gzip. A body
// without Content-Type is read as JSON: clients that send none mean JSON,
// since it is all the API takes. A form (what curl -d sends unless told
// otherwise) or text is refused rather than guessed at.
//
// A gzip body is decoded here, and the route's body limit applies to the
// decoded bytes too, so that a small compressed body cannot expand into
// gigabytes. gzip is decoded rather than refused because a batch of similar
// jobs compresses tenfold, which matters to producers on slow links, and
// the limit makes decoding as safe as reading.
func (s *Server) acceptJSONBody(c *gin.Context) {
	if err := checkJSONMediaType(c.GetHeader("Content-Type")); err != nil {
		s.writeError(c, err)
		return
	}
	gzipped, err := bodyCoding(c.Request.Header.Values("Content-Encoding"))
	if err != nil {
		c.Header("Accept-Encoding", "gzip")
		s.writeError(c, err)
		return
	}
	if gzipped {
		if err := s.decodeGzipBody(c); err != nil {
			s.writeError(c, err)
			return
		}
	}
	c.Next()
}

// unsupportedMediaType returns a 415 with the given detail.
func unsupportedMediaType(format string, args ...any) error {
	return &requestError{kind: kindUnsupportedMediaType, detail: fmt.Sprintf(format, args...)}
}

// checkJSONMediaType accepts an empty Content-Type, application/json and
// any type with the +json suffix (RFC 6839), with no charset or UTF-8,
// the only encoding of JSON (RFC 8259).
func checkJSONMediaType(header string) error {
	if strings.TrimSpace(header) == "" {
		return nil
	}
	mediaType, params, err := mime.ParseMediaType(header)
	if err != nil {
		return unsupportedMediaType("the Content-Type %q is malformed; send application/json", header)
	}
	_, subtype, _ := strings.Cut(mediaType, "/")
	if mediaType != "application/json" && !strings.HasSuffix(subtype, "+json") {
		return unsupportedMediaType("the request body must be JSON, sent as Content-Type: application/json; got %s", mediaType)
	}
	if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
		return unsupportedMediaType("JSON must be UTF-8; got charset %s", charset)
	}
	return nil
}

// bodyCoding reads the Content-Encoding headers: whether the body is
// gzip-compressed, or a 415 for a coding not decoded here. identity is no
// coding; gzip may be applied once.
func bodyCoding(headers []string) (gzipped bool, err error) {
	var codings []string
	for _, h := range headers {
		for coding := range strings.SplitSeq(h, ",") {
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "" && coding != "identity" {
				codings = append(codings, coding)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return false, nil
	case len(codings) == 1 && (codings[0] == "gzip" || codings[0] == "x-gzip"):
		return true, nil
	}
	return false, unsupportedMediaType("the Content-Encoding %s is not supported; send the body as is or with gzip", strings.Join(codings, ", "))
}

// decodeGzipBody replaces the request body with its decoded bytes,
// bounded by the route's body limit.
func (s *Server) decodeGzipBody(c *gin.Context) error {
	req := c.Request
	if req.Body == nil || req.Body == nethttp.NoBody {
		return nil
	}
	zr, err := gzip.NewReader(req.Body)
	switch {
	case errors.Is(err, io.EOF):
		// No bytes at all: the binding says the body is empty.
		return nil
	case err != nil:
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return invalidRequest("the request body is not valid gzip: %s", err.Error())
	}
	req.Body = nethttp.MaxBytesReader(c.Writer, gzipBody{zr, req.Body}, s.bodyLimit(c))
	req.ContentLength = -1
	req.Header.Del("Content-Encoding")
	req.Header.Del("Content-Length")
	return nil
}

// gzipBody reads decoded bytes and closes the underlying body.
type gzipBody struct {
	*gzip.Reader
	raw io.ReadCloser
}

// Close closes the decoder and the body under it.
func (b gzipBody) Close() error {
	return errors.Join(b.Reader.Close(), b.raw.Close())
}
