package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-go/troupe/http"
)

// clientTimeout bounds one request of a client command; every route
// answers at once, so a longer wait means a server in trouble.
const clientTimeout = 30 * time.Second

// maxResponseBytes bounds what a client command reads of an answer.
const maxResponseBytes = 64 << 20

// clientFlags are the flags shared by the client commands.
type clientFlags struct {
	server string
	token  string
}

// addClientFlags defines --server and --token with their defaults from the
// environment.
func addClientFlags(cmd *cobra.Command, env *environment, f *clientFlags) {
	server := env.getenv(envName("http_addr"))
	if server == "" {
		server = http.AddrDefault
	}
	token := env.getenv("TROUPE_API_TOKEN")
	if token == "" {
		// On the server's own machine its token list is often at hand.
		if tokens, _ := toStrings(env.getenv(envName("api_tokens"))); len(tokens) > 0 {
			token = tokens[0]
		}
	}
	cmd.Flags().StringVar(&f.server, "server", server, "URL or host:port of the server (env TROUPE_HTTP_ADDR)")
	cmd.Flags().StringVar(&f.token, "token", token, "bearer token for the API (env TROUPE_API_TOKEN, or the first of TROUPE_API_TOKENS)")
	// The token's default is a secret: keep it out of --help.
	cmd.Flags().Lookup("token").DefValue = ""
}

// client calls the API and prints its answers.
type client struct {
	base   *url.URL
	token  string
	http   *nethttp.Client
	stdout io.Writer
}

// newClient returns a client for the flags. Its transport is its own, so
// that closing it leaves no connection behind.
func newClient(f clientFlags, stdout io.Writer) (*client, error) {
	base, err := serverURL(f.server)
	if err != nil {
		return nil, err
	}
	transport := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	return &client{
		base:   base,
		token:  f.token,
		http:   &nethttp.Client{Transport: transport, Timeout: clientTimeout},
		stdout: stdout,
	}, nil
}

// close releases the client's idle connections.
func (c *client) close() { c.http.CloseIdleConnections() }

// serverURL turns --server into the API's base URL. A bare host:port means
// http; a host that means "every interface" (a server's listen address)
// is reached on loopback.
func serverURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("--server is empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid --server: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid --server %q: want an http or https URL, or host:port", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid --server %q: no host", raw)
	}
	if host, port, err := net.SplitHostPort(u.Host); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			loopback := "127.0.0.1"
			if ip != nil && ip.To4() == nil {
				loopback = "::1"
			}
			u.Host = net.JoinHostPort(loopback, port)
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// do sends one request and prints the JSON answer, indented, on stdout. An
// error answer becomes an error carrying the problem's detail.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := nethttp.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json, "+http.ProblemContentType)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("cannot reach the server at %s (set --server or TROUPE_HTTP_ADDR): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp, data)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		out.Reset()
		out.Write(data)
	}
	out.WriteByte('\n')
	if _, err := c.stdout.Write(out.Bytes()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// answerError describes an error answer by its problem detail, or by its
// status and the start of its body when it is not a problem.
func answerError(resp *nethttp.Response, body []byte) error {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p http.Problem
	if (mediaType == http.ProblemContentType || mediaType == "application/json") &&
		json.Unmarshal(body, &p) == nil && p.Detail != "" {
		title := p.Title
		if title == "" {
			title = nethttp.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("%s (%d %s)", p.Detail, resp.StatusCode, title)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if text == "" {
		return fmt.Errorf("the server answered %s", resp.Status)
	}
	return fmt.Errorf("the server answered %s: %s", resp.Status, text)
}

// clientCommand builds a client command whose run gets a ready client.
func clientCommand(env *environment, cmd *cobra.Command, run func(ctx context.Context, c *client, args []string) error) *cobra.Command {
	var flags clientFlags
	addClientFlags(cmd, env, &flags)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newClient(flags, cmd.OutOrStdout())
		if err != nil {
			return err
		}
		defer c.close()
		return run(cmd.Context(), c, args)
	}
	return cmd
}

func newSubmitCommand(env *environment) *cobra.Command {
	var (
		typ         string
		payload     string
		maxAttempts int
		cmd         *cobra.Command
	)
	cmd = clientCommand(env, &cobra.Command{
		Use:   "submit --type TYPE [--payload JSON] [--max-attempts N]",
		Short: "Submit a job and print it",
		Long: `Submit a job and print it. Without --payload the job's payload is null,
as when the API is sent no payload.`,
		Example: `  troupe submit --type noop
  troupe submit --type sleep --payload '{"ms": 5000}'
  troupe submit --type flaky --payload '{"failTimes": 2}' --max-attempts 3
  troupe submit --type send_email --payload @email.json`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client, _ []string) error {
		req := http.SubmitRequest{Type: typ, MaxAttempts: maxAttempts}
		if cmd.Flags().Changed("payload") {
			raw, err := readPayload(payload)
			if err != nil {
				return err
			}
			req.Payload = raw
		}
		return c.do(ctx, nethttp.MethodPost, "/jobs", nil, req)
	})
	cmd.Flags().StringVar(&typ, "type", "", "job type, one of the server's registered handlers (required)")
	cmd.Flags().StringVar(&payload, "payload", "", "job payload: a JSON value, or @FILE to read it from a file; none means null")
	cmd.Flags().IntVar(&maxAttempts, "max-attempts", 0, "attempts the job may use; 0 means the server's default")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// readPayload returns the JSON of --payload, read from a file for @FILE,
// and checks it here so that a typo does not need a round trip.
func readPayload(flag string) (json.RawMessage, error) {
	raw := []byte(flag)
	if name, ok := strings.CutPrefix(flag, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read --payload: %w", err)
		}
		raw = bytes.TrimSpace(b)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--payload is not valid JSON: %s", strconv.Quote(truncate(string(raw), 80)))
	}
	return raw, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func newGetCommand(env *environment) *cobra.Command {
	return clientCommand(env, &cobra.Command{
		Use:   "get ID",
		Short: "Print a job",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client, args []string) error {
		return c.do(ctx, nethttp.MethodGet, "/jobs/"+url.PathEscape(args[0]), nil, nil)
	})
}

func newCancelCommand(env *environment) *cobra.Command {
	return clientCommand(env, &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job and print it",
		Long: `Cancel a job and print it. A pending job is canceled at once; a running
job's handler is told to stop, and the job printed may still be running until
it does. A completed or failed job cannot be canceled (409).`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client, args []string) error {
		return c.do(ctx, nethttp.MethodDelete, "/jobs/"+url.PathEscape(args[0]), nil, nil)
	})
}

func newRetryCommand(env *environment) *cobra.Command {
	return clientCommand(env, &cobra.Command{
		Use:   "retry ID",
		Short: "Submit a copy of a failed or canceled job and print it",
		Long: `Submit a new job with the type, payload and maxAttempts of a failed or
canceled job, and print it with retryOf, the ID of the job copied. The original
is left as it is. A pending, running or completed job cannot be retried (409).`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client, args []string) error {
		return c.do(ctx, nethttp.MethodPost, "/jobs/"+url.PathEscape(args[0])+"/retry", nil, nil)
	})
}

func newListCommand(env *environment) *cobra.Command {
	var (
		statuses      []string
		typ           string
		limit, offset int
	)
	cmd := clientCommand(env, &cobra.Command{
		Use:   "list [--status S] [--type T] [--limit N] [--offset N]",
		Short: "List jobs, oldest first",
		Example: `  troupe list
  troupe list --status pending,running --type sleep
  troupe list --status failed --limit 10 --offset 20`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client, _ []string) error {
		q := url.Values{}
		for _, s := range statuses {
			q.Add("status", s)
		}
		if typ != "" {
			q.Set("type", typ)
		}
		if limit != 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		if offset != 0 {
			q.Set("offset", strconv.Itoa(offset))
		}
		return c.do(ctx, nethttp.MethodGet, "/jobs", q, nil)
	})
	cmd.Flags().StringSliceVar(&statuses, "status", nil, "only jobs in these statuses: pending, running, completed, failed, canceled (repeat or comma-separate)")
	cmd.Flags().StringVar(&typ, "type", "", "only jobs of this type")
	cmd.Flags().IntVar(&limit, "limit", 0, "page size; 0 means the server's default (50)")
	cmd.Flags().IntVar(&offset, "offset", 0, "matching jobs to skip")
	return cmd
}
