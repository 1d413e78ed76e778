package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-go/troupe/http"
)

// healthcheckTimeoutDefault bounds a health check when --timeout is not
// given: below the intervals that container runtimes use between checks,
// above what a healthy server needs.
const healthcheckTimeoutDefault = 3 * time.Second

// maxHealthBytes bounds what a health check reads of the answer; the real
// body is a few hundred bytes.
const maxHealthBytes = 64 << 10

// newHealthcheckCommand builds `troupe healthcheck`, the probe for images
// that have neither a shell nor curl: its exit status is the verdict.
func newHealthcheckCommand(env *environment) *cobra.Command {
	var (
		flags   clientFlags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck [--server ADDR] [--timeout D]",
		Short: "Exit 0 if the server's /health answers 200, 1 otherwise",
		Long: `Check a running server: GET /health at --server and exit 0 if it answers
200 within --timeout, or exit 1 with one line on stderr that says why (no
answer, or the status and the parts that are down).

It is meant for container health checks: the image has no shell and no curl,
and TROUPE_HTTP_ADDR, which the server listens on, is also the default of
--server (a listen address such as 0.0.0.0:8080 is reached on loopback).
/health needs no token; with one (--token, or TROUPE_API_TOKEN, or the first
of TROUPE_API_TOKENS) the server also says why a part is down.`,
		Example: `  troupe healthcheck
  troupe healthcheck --server 127.0.0.1:8081 --timeout 1s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return healthcheck(cmd.Context(), flags, timeout)
		},
	}
	addClientFlags(cmd, env, &flags)
	cmd.Flags().DurationVar(&timeout, "timeout", healthcheckTimeoutDefault, "how long to wait for the answer")
	return cmd
}

// healthcheck returns nil when the server's /health answers 200 within
// timeout, or an error saying why not.
func healthcheck(ctx context.Context, f clientFlags, timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("invalid --timeout %s: must be positive", timeout)
	}
	base, err := serverURL(f.server)
	if err != nil {
		return err
	}
	u := *base
	u.Path += "/health"
	target := u.String()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	// A transport of its own, closed on return: a probe leaves nothing open.
	transport := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	defer transport.CloseIdleConnections()
	resp, err := (&nethttp.Client{Transport: transport}).Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("unhealthy: %s did not answer within %s", target, timeout)
		}
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("unhealthy: cannot reach %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBytes))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("unhealthy: %s did not finish its answer within %s", target, timeout)
		}
		return fmt.Errorf("unhealthy: read the answer of %s: %w", target, err)
	}
	if resp.StatusCode != nethttp.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s%s", target, resp.Status, describeHealth(body))
	}
	return nil
}

// describeHealth names the parts that a /health body reports down, as
// " (store down: …)", or returns "" for a body that is not one.
func describeHealth(body []byte) string {
	var h http.HealthResponse
	if json.Unmarshal(body, &h) != nil || h.Status == "" {
		return ""
	}
	var down []string
	for _, part := range []struct{ name, state string }{
		{"dispatcher", h.Dispatcher},
		{"store", h.Store},
	} {
		if part.state != "" && part.state != http.HealthUp {
			down = append(down, part.name+" "+part.state)
		}
	}
	if len(down) == 0 {
		return " (status " + h.Status + ")"
	}
	return " (" + strings.Join(down, ", ") + ")"
}
