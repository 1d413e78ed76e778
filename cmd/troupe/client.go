package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-go/troupe/domain"
	"github.com/troupe-go/troupe/http"
	apiclient "github.com/troupe-go/troupe/http/client"
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

// client calls the API through the client package and prints its
// answers as the server sent them, indented.
type client struct {
	api    *apiclient.Client
	base   *url.URL
	stdout io.Writer
}

// newClient returns a client for the flags. Its transport is its own, so
// that closing it leaves no connection behind.
func newClient(f clientFlags, stdout io.Writer) (*client, error) {
	return newClientTimeout(f, stdout, clientTimeout)
}

// newClientTimeout is newClient with a bound on each request, 0 for none.
func newClientTimeout(f clientFlags, stdout io.Writer, timeout time.Duration) (*client, error) {
	base, err := serverURL(f.server)
	if err != nil {
		return nil, err
	}
	transport := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	api, err := apiclient.New(base.String(),
		apiclient.WithToken(f.token),
		apiclient.WithUserAgent("troupe-cli/"+buildVersion()),
		apiclient.WithHTTPClient(&nethttp.Client{Transport: transport, Timeout: timeout}))
	if err != nil {
		return nil, fmt.Errorf("invalid --server: %w", err)
	}
	return &client{api: api, base: base, stdout: stdout}, nil
}

// close releases the client's idle connections.
func (c *client) close() { c.api.CloseIdleConnections() }

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
// error answer becomes an error carrying the problem's detail. An answer
// without a body (204) prints nothing.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any, opts ...apiclient.CallOption) error {
	data, err := c.fetch(ctx, method, path, query, body, opts...)
	if err != nil {
		return err
	}
	return c.print(data)
}

// print writes an answer's JSON, indented, on stdout.
func (c *client) print(data []byte) error {
	if len(data) == 0 {
		return nil
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

// fetch sends one request and returns the body of a successful answer as
// the server sent it.
func (c *client) fetch(ctx context.Context, method, path string, query url.Values, body any, opts ...apiclient.CallOption) ([]byte, error) {
	var data json.RawMessage
	_, err := c.api.Do(ctx, method, path, query, body, &data, opts...)
	return data, c.explain(err)
}

// explain words a client error for the command line: a problem answer says
// its detail and status; a server out of reach says how to name another.
func (c *client) explain(err error) error {
	if err == nil {
		return nil
	}
	var p *apiclient.Problem
	if errors.As(err, &p) {
		return p
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return fmt.Errorf("cannot reach the server at %s (set --server or TROUPE_HTTP_ADDR): %w", c.base, urlErr.Err)
	}
	return err
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
		typ            string
		payload        string
		maxAttempts    int
		queue          string
		priority       int
		in, at         string
		uniqueKey      string
		uniqueFor      string
		timeout        string
		key            string
		idempotencyKey string
		cmd            *cobra.Command
	)
	cmd = clientCommand(env, &cobra.Command{
		Use:   "submit --type TYPE [--payload JSON] [--max-attempts N] [--queue Q] [--priority N] [--in D | --at TIME] [--unique-key K [--unique-for D]] [--timeout D] [--key K]",
		Short: "Submit a job and print it",
		Long: `Submit a job and print it. Without --payload the job's payload is null,
as when the API is sent no payload.

A job runs at once unless --in or --at says when; it waits in the queue
"default" at priority 5 unless --queue and --priority say otherwise (1 runs
first, 9 last). With --unique-key, a job whose key another unfinished job
holds (or one that finished less than --unique-for ago) is not created: the
job printed is the one that holds the key. --timeout bounds each attempt
("0s" for none; the default is the type's or the server's). Durations are
Go durations: 90s, 5m, 1h30m.

--key gives the job a flow key, such as a customer's ID: the queue's per-key
settings (troupe queues set --key-limit, --key-rate, --ordered, --fair) apply
to each key separately. Any number of jobs may share a key.`,
		Example: `  troupe submit --type noop
  troupe submit --type sleep --payload '{"ms": 5000}'
  troupe submit --type flaky --payload '{"failTimes": 2}' --max-attempts 3
  troupe submit --type send_email --payload @email.json
  troupe submit --type generate_report --queue reports --priority 1 --in 1h --timeout 10m
  troupe submit --type send_email --at 2025-03-02T08:00:00Z --unique-key welcome:ada --unique-for 24h
  troupe submit --type sync_account --queue sync --key customer-42`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client, _ []string) error {
		req := apiclient.SubmitRequest{Type: domain.JobType(typ), MaxAttempts: maxAttempts}
		flags := cmd.Flags()
		if flags.Changed("payload") {
			raw, err := readPayload(payload)
			if err != nil {
				return err
			}
			req.Payload = raw
		}
		// Each flag is checked here, so that a typo does not need a round
		// trip; the server checks them again. Durations go as they were
		// typed.
		text := func(flag, value string, check func(string) error) (string, error) {
			if !flags.Changed(flag) {
				return "", nil
			}
			if err := check(value); err != nil {
				return "", fmt.Errorf("invalid --%s %s: %w", flag, strconv.Quote(value), err)
			}
			return value, nil
		}
		anything := func(string) error { return nil }
		var err error
		if req.Queue, err = text("queue", queue, anything); err != nil {
			return err
		}
		runAt, err := text("at", at, checkTime)
		if err != nil {
			return err
		}
		if runAt != "" {
			req.RunAt, _ = time.Parse(time.RFC3339Nano, runAt) // checked
		}
		if req.Delay, err = text("in", in, checkDuration); err != nil {
			return err
		}
		if req.UniqueKey, err = text("unique-key", uniqueKey, anything); err != nil {
			return err
		}
		if req.UniqueFor, err = text("unique-for", uniqueFor, checkDuration); err != nil {
			return err
		}
		if req.Timeout, err = text("timeout", timeout, checkDuration); err != nil {
			return err
		}
		if req.Key, err = text("key", key, checkKey); err != nil {
			return err
		}
		if flags.Changed("priority") {
			if priority < 1 || priority > 9 {
				return fmt.Errorf("invalid --priority %d: must be from 1 (first) to 9 (last)", priority)
			}
			req.Priority = priority
		}
		if flags.Changed("queue") && queue == "" {
			return errors.New(`invalid --queue "": name a queue, or leave the flag out for "default"`)
		}
		if flags.Changed("unique-key") && uniqueKey == "" {
			return errors.New(`invalid --unique-key "": must not be empty`)
		}
		// The key is the flag's or none: the command is not retried, and a
		// later run is a new submission unless it names the same key.
		return c.do(ctx, nethttp.MethodPost, "/jobs", nil, req, apiclient.IdempotencyKey(idempotencyKey))
	})
	fs := cmd.Flags()
	fs.StringVar(&typ, "type", "", "job type, one of the server's registered handlers (required)")
	fs.StringVar(&payload, "payload", "", "job payload: a JSON value, or @FILE to read it from a file; none means null")
	fs.IntVar(&maxAttempts, "max-attempts", 0, "attempts the job may use; 0 means the server's default")
	fs.StringVar(&queue, "queue", "", `queue the job waits in (default "default")`)
	fs.IntVar(&priority, "priority", 0, "priority within the queue, 1 (first) to 9 (last) (default 5)")
	fs.StringVar(&in, "in", "", "run no sooner than this long from now, a duration such as 90s or 1h30m")
	fs.StringVar(&at, "at", "", "run no sooner than this RFC 3339 time, such as 2025-03-02T08:00:00Z")
	fs.StringVar(&uniqueKey, "unique-key", "", "create no job while another unfinished job has this key; print that one")
	fs.StringVar(&uniqueFor, "unique-for", "", "with --unique-key: keep the key held this long after the job finished")
	fs.StringVar(&timeout, "timeout", "", `timeout of each attempt, such as 30s; "0s" for none (default: the type's or the server's)`)
	fs.StringVar(&key, "key", "", "flow key of the job, such as a customer's ID, that the queue's per-key settings apply to")
	fs.StringVar(&idempotencyKey, "idempotency-key", "", "send this Idempotency-Key, so that running the command again with it creates nothing new")
	_ = cmd.MarkFlagRequired("type")
	cmd.MarkFlagsMutuallyExclusive("in", "at")
	return cmd
}

// checkDuration checks a Go duration flag.
func checkDuration(v string) error {
	if _, err := time.ParseDuration(v); err != nil {
		return errors.New("want a duration with a unit, such as 90s, 5m or 1h30m")
	}
	return nil
}

// checkKey checks a job's flow key.
func checkKey(v string) error {
	if domain.ValidateKey(v) != nil {
		return fmt.Errorf("want 1 to %d bytes of UTF-8 without NUL", domain.MaxKeyLength)
	}
	return nil
}

// checkTime checks an RFC 3339 time flag.
func checkTime(v string) error {
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		return errors.New("want an RFC 3339 time with a zone, such as 2025-03-02T08:00:00Z")
	}
	return nil
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
		Long: `Cancel a job and print it. A scheduled or pending job is canceled at once; a running
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
is left as it is; the copy runs at once, in the original's queue at its priority,
with its timeout, and without its unique key. A scheduled, pending, running or
completed job cannot be retried (409).`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client, args []string) error {
		return c.do(ctx, nethttp.MethodPost, "/jobs/"+url.PathEscape(args[0])+"/retry", nil, nil)
	})
}

func newListCommand(env *environment) *cobra.Command {
	var (
		statuses      []string
		typ, queue    string
		key           string
		limit, offset int
	)
	cmd := clientCommand(env, &cobra.Command{
		Use:   "list [--status S] [--type T] [--queue Q] [--key K] [--limit N] [--offset N]",
		Short: "List jobs, oldest first",
		Example: `  troupe list
  troupe list --status pending,running --type sleep
  troupe list --status failed --limit 10 --offset 20
  troupe list --status scheduled --queue reports
  troupe list --status pending --queue sync --key customer-42`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client, _ []string) error {
		f := apiclient.Filter{Type: domain.JobType(typ), Queue: queue, Key: key, Limit: limit, Offset: offset}
		for _, s := range statuses {
			f.Statuses = append(f.Statuses, domain.Status(s))
		}
		return c.do(ctx, nethttp.MethodGet, "/jobs", f.Query(), nil)
	})
	cmd.Flags().StringSliceVar(&statuses, "status", nil, "only jobs in these statuses: scheduled, pending, running, completed, failed, canceled (repeat or comma-separate)")
	cmd.Flags().StringVar(&typ, "type", "", "only jobs of this type")
	cmd.Flags().StringVar(&queue, "queue", "", "only jobs of this queue")
	cmd.Flags().StringVar(&key, "key", "", "only jobs with this flow key")
	cmd.Flags().IntVar(&limit, "limit", 0, "page size; 0 means the server's default (50)")
	cmd.Flags().IntVar(&offset, "offset", 0, "matching jobs to skip")
	return cmd
}

func newQueuesCommand(env *environment) *cobra.Command {
	cmd := clientCommand(env, &cobra.Command{
		Use:   "queues",
		Short: "List the queues, pause or resume one, or set its flow settings",
		Long: `List the queues with their counts of scheduled, pending and running jobs,
whether each is paused, its flow settings (limit, rate, perKey, ordered, fair;
see troupe queues set), its cap on the server asked (nodeLimit, from
TROUPE_QUEUE_LIMITS), and how many of its pending jobs wait for each flow
setting (waiting: "queue limit", "queue rate", "key limit", "key order",
"key rate").

A paused queue keeps taking jobs but starts none, on every node sharing the
store, until it is resumed; jobs already running finish. The pause is stored:
it holds across restarts.`,
		Example: `  troupe queues
  troupe queues pause email
  troupe queues resume email
  troupe queues set email --limit 10 --rate 20/1s
  troupe queues set sync --key-limit 1 --ordered --fair`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client, _ []string) error {
		return c.do(ctx, nethttp.MethodGet, "/queues", nil, nil)
	})
	change := func(verb, short string) *cobra.Command {
		return clientCommand(env, &cobra.Command{
			Use:   verb + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
		}, func(ctx context.Context, c *client, args []string) error {
			return c.do(ctx, nethttp.MethodPost, "/queues/"+url.PathEscape(args[0])+"/"+verb, nil, nil)
		})
	}
	cmd.AddCommand(
		change("pause", "Pause a queue on every node and print it"),
		change("resume", "Resume a paused queue and print it"),
		newQueuesSetCommand(env),
	)
	return cmd
}
