package main

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/troupe-go/troupe/domain"
	apiclient "github.com/troupe-go/troupe/http/client"
)

// settingFlags names the flag behind each field of the queue settings,
// as the API names the fields.
var settingFlags = map[string]string{
	"limit":             "--limit",
	"rate":              "--rate",
	"rate.count":        "--rate",
	"rate.per":          "--rate",
	"rate.burst":        "--burst",
	"perKey":            "--key-limit or --key-rate",
	"perKey.limit":      "--key-limit",
	"perKey.rate":       "--key-rate",
	"perKey.rate.count": "--key-rate",
	"perKey.rate.per":   "--key-rate",
	"perKey.rate.burst": "--key-burst",
	"ordered":           "--ordered",
}

func newQueuesSetCommand(env *environment) *cobra.Command {
	var (
		limit, burst, keyLimit, keyBurst int
		rate, keyRate                    string
		ordered, fair                    bool
		cmd                              *cobra.Command
	)
	cmd = clientCommand(env, &cobra.Command{
		Use:   "set NAME [--limit N] [--rate N/DUR [--burst B]] [--key-limit N] [--key-rate N/DUR [--key-burst B]] [--ordered] [--fair]",
		Short: "Replace a queue's flow settings on every node and print the queue",
		Long: `Replace a queue's flow settings, on every node sharing the store, and print
the queue. The settings are stored: they hold across restarts. Every setting
is replaced: a flag left out clears its setting, and no flag at all clears
them all. The queue's pause is left as it is.

  --limit N        at most N of the queue's jobs run at once, across all nodes
                   (each node's TROUPE_QUEUE_LIMITS cap still applies)
  --rate N/DUR     at most N starts per DUR across all nodes (20/1s, 100/1m,
                   5/s), a token bucket of --burst tokens (default N)
  --key-limit N    at most N jobs of one key run at once (troupe submit --key)
  --key-rate N/DUR at most N starts of one key per DUR, --key-burst tokens
  --ordered        with --key-limit 1: a key's jobs start one after the other,
                   in submission order
  --fair           ready jobs are taken round-robin across keys

A job held back waits in pending; troupe get shows why (waitingFor), and
troupe queues how many wait for each reason.`,
		Example: `  troupe queues set email --limit 10 --rate 20/1s
  troupe queues set payments --rate 100/1m --burst 10
  troupe queues set sync --key-limit 1 --ordered --fair
  troupe queues set email`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *client, args []string) error {
		flags := cmd.Flags()
		settings := apiclient.QueueSettings{Limit: limit, Ordered: ordered, Fair: fair}
		var err error
		if settings.Rate, err = rateFlag(flags.Changed("rate"), "rate", rate, flags.Changed("burst"), "burst", burst); err != nil {
			return err
		}
		if flags.Changed("key-limit") || flags.Changed("key-rate") || flags.Changed("key-burst") {
			settings.PerKey = &apiclient.KeyLimits{Limit: keyLimit}
			if settings.PerKey.Rate, err = rateFlag(flags.Changed("key-rate"), "key-rate", keyRate, flags.Changed("key-burst"), "key-burst", keyBurst); err != nil {
				return err
			}
		}
		// Checked here, so that a mistake names its flag and needs no round
		// trip; the server checks the settings again.
		if err := checkSettings(settings); err != nil {
			return err
		}
		// The body is the client's SetQueue's; the answer is printed as
		// the server sent it, like the other commands'.
		return c.do(ctx, nethttp.MethodPut, "/queues/"+url.PathEscape(args[0]), nil, settings)
	})
	fs := cmd.Flags()
	fs.IntVar(&limit, "limit", 0, "at most this many of the queue's jobs run at once, across all nodes")
	fs.StringVar(&rate, "rate", "", "at most COUNT starts per PERIOD across all nodes, such as 20/1s, 100/1m or 5/s")
	fs.IntVar(&burst, "burst", 0, "with --rate: the bucket's size, the starts allowed at once (default the rate's count)")
	fs.IntVar(&keyLimit, "key-limit", 0, "at most this many jobs of one key run at once")
	fs.StringVar(&keyRate, "key-rate", "", "at most COUNT starts of one key per PERIOD, such as 5/1m")
	fs.IntVar(&keyBurst, "key-burst", 0, "with --key-rate: the bucket's size (default the rate's count)")
	fs.BoolVar(&ordered, "ordered", false, "with --key-limit 1: start each key's jobs in submission order")
	fs.BoolVar(&fair, "fair", false, "take ready jobs round-robin across keys")
	return cmd
}

// rateHint says how a rate flag is written.
const rateHint = "want COUNT/PERIOD with a Go duration or a unit, such as 20/1s, 100/1m, 5/s or 1/1h30m"

// parseRate reads COUNT/PERIOD: "20/1s", "100/1m", or "5/s" (a bare unit
// means one of it).
func parseRate(text string) (count int, per time.Duration, err error) {
	c, p, ok := strings.Cut(strings.TrimSpace(text), "/")
	if !ok {
		return 0, 0, errors.New(rateHint)
	}
	count, err = strconv.Atoi(strings.TrimSpace(c))
	if err != nil {
		return 0, 0, fmt.Errorf("the count %q is not a whole number; %s", c, rateHint)
	}
	p = strings.TrimSpace(p)
	d := p
	if d != "" && (d[0] < '0' || d[0] > '9') && d[0] != '.' {
		d = "1" + d
	}
	if per, err = time.ParseDuration(d); err != nil {
		return 0, 0, fmt.Errorf("the period %q is not a duration; %s", p, rateHint)
	}
	return count, per, nil
}

// rateFlag builds a rate from its flags: none unless the rate was given;
// a burst without its rate is a mistake.
func rateFlag(set bool, name, text string, burstSet bool, burstName string, burst int) (*apiclient.Rate, error) {
	if !set {
		if burstSet {
			return nil, fmt.Errorf("--%s needs --%s: it sizes the rate's bucket", burstName, name)
		}
		return nil, nil
	}
	count, per, err := parseRate(text)
	if err != nil {
		return nil, fmt.Errorf("invalid --%s %s: %w", name, strconv.Quote(text), err)
	}
	return &apiclient.Rate{Count: count, Per: per, Burst: burst}, nil
}

// checkSettings checks the settings as the server will, and names the
// flag behind each refused field.
func checkSettings(s apiclient.QueueSettings) error {
	var errs []error
	for _, e := range unjoin(toDomainSettings(s).Validate()) {
		var se *domain.SettingError
		if !errors.As(e, &se) {
			errs = append(errs, e)
			continue
		}
		reason := strings.TrimPrefix(se.Err.Error(), domain.ErrInvalid.Error()+": ")
		reason = strings.ReplaceAll(reason, "perKey.limit", "--key-limit")
		flag := settingFlags[se.Field]
		if flag == "" {
			flag = se.Field
		}
		errs = append(errs, fmt.Errorf("invalid %s: %s", flag, reason))
	}
	return errors.Join(errs...)
}

// toDomainSettings converts the API's settings to the domain's.
func toDomainSettings(s apiclient.QueueSettings) domain.QueueSettings {
	rate := func(r *apiclient.Rate) *domain.Rate {
		if r == nil {
			return nil
		}
		return &domain.Rate{Count: r.Count, Per: r.Per, Burst: r.Burst}
	}
	out := domain.QueueSettings{Limit: s.Limit, Rate: rate(s.Rate), Ordered: s.Ordered, Fair: s.Fair}
	if s.PerKey != nil {
		out.PerKey = &domain.KeyLimits{Limit: s.PerKey.Limit, Rate: rate(s.PerKey.Rate)}
	}
	return out
}
