package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/spf13/cobra"
)

// scheduleJSON is the part of a schedule on the wire that the list's
// table shows (and the tests read).
type scheduleJSON struct {
	Name          string    `json:"name"`
	Cron          string    `json:"cron"`
	Description   string    `json:"description"`
	Timezone      string    `json:"timezone"`
	CatchUp       string    `json:"catchUp"`
	Paused        bool      `json:"paused"`
	Source        string    `json:"source"`
	NextRunAt     time.Time `json:"nextRunAt"`
	LastRunAt     time.Time `json:"lastRunAt"`
	LastJobID     string    `json:"lastJobId"`
	LastJobStatus string    `json:"lastJobStatus"`
}

// schedulesJSON is the answer of GET /schedules.
type schedulesJSON struct {
	Schedules []scheduleJSON `json:"schedules"`
}

// scheduleReadOnlyKeys are the members of a schedule that the server
// keeps, not the caller: put drops them, so that the output of get can be
// edited and put back.
var scheduleReadOnlyKeys = []string{
	"description", "source", "nextRunAt", "lastRunAt", "lastJobId", "lastJobStatus", "createdAt", "updatedAt",
}

func newSchedulesCommand(env *environment) *cobra.Command {
	var asJSON bool
	list := func(ctx context.Context, c *client, _ []string) error {
		return c.listSchedules(ctx, asJSON)
	}
	cmd := clientCommand(env, &cobra.Command{
		Use:   "schedules",
		Short: "List the periodic jobs, or change one",
		Long: `List the schedules (periodic jobs) as a table: name, cron in words, time zone,
next run, last run and the status of its job, whether it is paused, and who owns
it (api, or config for those declared in the server's YAML file, which the API
may not change). --json prints the server's answer instead.

Each slot of a schedule submits one job, however many nodes run: the job's
unique key names the schedule and the slot's time.`,
		Example: `  troupe schedules
  troupe schedules get nightly-report
  troupe schedules put --file nightly-report.yaml
  troupe schedules pause nightly-report
  troupe schedules trigger nightly-report
  troupe schedules delete nightly-report`,
		Args: cobra.NoArgs,
	}, list)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON answer instead of a table")

	listCmd := clientCommand(env, &cobra.Command{
		Use:   "list [--json]",
		Short: "List the schedules (the same as troupe schedules)",
		Args:  cobra.NoArgs,
	}, list)
	listCmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON answer instead of a table")

	named := func(use, short, long, method, suffix string) *cobra.Command {
		return clientCommand(env, &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Long:  long,
			Args:  cobra.ExactArgs(1),
		}, func(ctx context.Context, c *client, args []string) error {
			return c.do(ctx, method, "/schedules/"+url.PathEscape(args[0])+suffix, nil, nil)
		})
	}
	cmd.AddCommand(
		listCmd,
		named("get", "Print a schedule", "", nethttp.MethodGet, ""),
		newSchedulesPutCommand(env),
		named("delete", "Delete a schedule; the jobs it submitted stay",
			`Delete a schedule. The jobs it already submitted stay. A schedule declared in
the server's config file cannot be deleted through the API (409): remove it from
the file and restart the server.`, nethttp.MethodDelete, ""),
		named("pause", "Stop a schedule's slots from submitting jobs, on every node, and print it",
			`Pause a schedule: its slots submit nothing, on every node, until it is
resumed. A config schedule is paused in the file (paused: true), not here (409).`,
			nethttp.MethodPost, "/pause"),
		named("resume", "Resume a paused schedule and print it",
			`Resume a paused schedule from its next slot (with catchUp one, after one job
for the slots missed while paused).`, nethttp.MethodPost, "/resume"),
		named("trigger", "Submit a schedule's job now, outside its slots, and print the job",
			`Submit the schedule's job now, outside its slots, and print the job. It works
on paused schedules and on those of the config file too.`, nethttp.MethodPost, "/trigger"),
	)
	return cmd
}

func newSchedulesPutCommand(env *environment) *cobra.Command {
	var (
		file string
		cmd  *cobra.Command
	)
	cmd = clientCommand(env, &cobra.Command{
		Use:   "put --file FILE",
		Short: "Create or replace a schedule from a JSON or YAML file, and print it",
		Long: `Create or replace a schedule. FILE holds one schedule, in JSON or YAML, with
its name ("-" reads standard input):

  name: nightly-report
  cron: "0 3 * * *"          # 5 fields, or 6 with seconds first, or @hourly, @every 30s
  timezone: Europe/Paris     # default UTC
  catchUp: one               # skip (default) or one
  job: {type: generate_report, payload: {day: yesterday}, queue: reports, timeout: 10m}

The members the server keeps (nextRunAt, lastRunAt, source...) are ignored, so
the output of troupe schedules get can be edited and put back.`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client, _ []string) error {
		name, body, err := readScheduleFile(file, cmd.InOrStdin())
		if err != nil {
			return err
		}
		return c.do(ctx, nethttp.MethodPut, "/schedules/"+url.PathEscape(name), nil, body)
	})
	cmd.Flags().StringVarP(&file, "file", "f", "", `JSON or YAML file of the schedule, with its name; "-" for standard input (required)`)
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readScheduleFile reads a schedule in JSON or YAML (JSON is YAML) and
// returns its name and the body to PUT. The server checks the rest.
func readScheduleFile(path string, stdin io.Reader) (string, map[string]any, error) {
	var (
		data []byte
		err  error
	)
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, maxResponseBytes))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", nil, fmt.Errorf("read --file: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil, fmt.Errorf("--file %s is empty", path)
	}
	doc, err := yaml.Parser().Unmarshal(data)
	if err != nil {
		return "", nil, fmt.Errorf("--file %s is neither JSON nor YAML: %w", path, err)
	}
	name, ok := doc["name"].(string)
	if !ok || name == "" {
		return "", nil, fmt.Errorf("--file %s has no name: the schedule's name is its member name", path)
	}
	for _, key := range scheduleReadOnlyKeys {
		delete(doc, key)
	}
	// The body must be JSON: YAML's timestamps become RFC 3339 strings.
	if _, err := json.Marshal(doc); err != nil {
		return "", nil, fmt.Errorf("--file %s: %w", path, err)
	}
	return name, doc, nil
}

// listSchedules prints the schedules as a table, or the answer as it is.
func (c *client) listSchedules(ctx context.Context, asJSON bool) error {
	if asJSON {
		return c.do(ctx, nethttp.MethodGet, "/schedules", nil, nil)
	}
	// Decoded leniently, into the members the table shows.
	data, err := c.fetch(ctx, nethttp.MethodGet, "/schedules", nil, nil)
	if err != nil {
		return err
	}
	var out schedulesJSON
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Errorf("read the schedules: %w", err)
	}
	return writeSchedulesTable(c.stdout, out.Schedules, time.Now())
}

// writeSchedulesTable lays the schedules out for people; times are shown
// in UTC with how far they are from now.
func writeSchedulesTable(w io.Writer, schedules []scheduleJSON, now time.Time) error {
	if len(schedules) == 0 {
		_, err := fmt.Fprintln(w, "no schedules")
		return err
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tTIMEZONE\tNEXT RUN\tLAST RUN\tLAST STATUS\tPAUSED\tSOURCE")
	for _, s := range schedules {
		description := s.Description
		if description == "" {
			description = s.Cron
		}
		status := s.LastJobStatus
		if status == "" {
			status = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, description, cmp.Or(s.Timezone, "UTC"),
			when(s.NextRunAt, now), when(s.LastRunAt, now), status, strconv.FormatBool(s.Paused), cmp.Or(s.Source, "-"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("format the schedules: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// when shows a time in UTC, to the second, with its distance from now:
// "2025-03-02 08:00:00Z (in 5m0s)"; "-" for none.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	rel := "in " + d.String()
	if d < 0 {
		rel = (-d).String() + " ago"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z") + " (" + rel + ")"
}
