package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/domain"
)

func TestParseCron_RefusesNamingTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr, tz, field string
	}{
		{"", "", "cron:"},
		{"   ", "", "cron:"},
		{"TZ=UTC 0 * * * *", "", "cron:"},
		{"CRON_TZ=Europe/Paris 0 3 * * *", "", "cron:"},
		{"TZ=UTC", "", "cron:"},
		{"61 * * * *", "", "cron:"},
		{"* * *", "", "cron:"},
		{"* * * * * * *", "", "cron:"},
		{"@fortnightly", "", "cron:"},
		{"@every 500ms", "", "cron:"},
		{"@every -1s", "", "cron:"},
		{"@every soon", "", "cron:"},
		{"0 0 30 2 *", "", "never fires"},
		{"0 3 * * *", "Mars/Olympus_Mons", "timezone:"},
		{"0 3 * * *", "Local", "timezone:"},
	} {
		err := checkCron(tc.expr, tc.tz, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		require.ErrorIs(t, err, domain.ErrInvalid, "%q in %q", tc.expr, tc.tz)
		require.Contains(t, err.Error(), tc.field, "%q in %q", tc.expr, tc.tz)
	}
	for _, expr := range []string{"*/5 * * * *", "30 */5 * * * *", "@hourly", "@daily", "@every 30s", "@every 1h", " 0 9 * * MON-FRI "} {
		_, err := parseCron(expr, "Europe/Paris")
		require.NoError(t, err, expr)
	}
}

func TestDescribeCron(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]string{
		"*/5 * * * *":          "every 5 minutes",
		"* * * * *":            "every minute",
		"0 * * * * *":          "every minute",
		"* * * * * *":          "every second",
		"*/30 * * * * *":       "every 30 seconds",
		"15 * * * *":           "every hour at minute 15",
		"0 * * * *":            "every hour",
		"@hourly":              "every hour",
		"0 */6 * * *":          "every 6 hours",
		"30 */2 * * *":         "every 2 hours at minute 30",
		"0 3 * * *":            "every day at 03:00",
		"@daily":               "every day at 00:00",
		"@midnight":            "every day at 00:00",
		"15 30 4 * * *":        "every day at 04:30:15",
		"30 9 * * 1":           "every Monday at 09:30",
		"30 9 * * MON":         "every Monday at 09:30",
		"@weekly":              "every Sunday at 00:00",
		"0 9 * * 1-5":          "every weekday at 09:00",
		"0 0 1 * *":            "every month on day 1 at 00:00",
		"@monthly":             "every month on day 1 at 00:00",
		"@every 1h":            "every 1h0m0s",
		"@every 30s":           "every 30s",
		"@yearly":              "@yearly",
		"*/7 * * * *":          "*/7 * * * *", // 56 -> 0 is not 7 minutes
		"0 */5 * * *":          "0 */5 * * *", // 20 -> 0 is not 5 hours
		"0 9 * * 1,3":          "0 9 * * 1,3",
		"0 9 1 * 1":            "0 9 1 * 1", // day 1 or Monday
		"5-10 * * * *":         "5-10 * * * *",
		"not a cron":           "not a cron",
		"*/10 */5 * * * *":     "*/10 */5 * * * *",
		"0 0 9 * * *":          "every day at 09:00",
		"0 30 9 * * MON-FRI":   "every weekday at 09:30",
		"0 12 * 1 *":           "0 12 * 1 *", // January only
		"0 0 1-31 * 0-6":       "every day at 00:00",
		"0 0 1-31 * 1":         "0 0 1-31 * 1", // either field matches: every day, but unusual
		"*/15 * * * * *":       "every 15 seconds",
		"0 */15 * * * *":       "every 15 minutes",
		"0 0 * * * *":          "every hour",
		"0 0 12 * * SUN":       "every Sunday at 12:00",
		"0 45 23 * * SAT":      "every Saturday at 23:45",
		"0 0 0,12 * * *":       "every 12 hours",
		"0 0 */12 * * *":       "every 12 hours",
		"0 0 0 15 * *":         "every month on day 15 at 00:00",
		"@every 90m":           "every 1h30m0s",
		"@every 2h30m15s":      "every 2h30m15s",
		"@every 1500ms":        "every 1s", // the library keeps whole seconds
		"0 0 0 15 * MON":       "0 0 0 15 * MON",
		"0 0 0 15,16 * *":      "0 0 0 15,16 * *",
		"0 30 9 * * 1,2,3,4,5": "every weekday at 09:30",
	} {
		require.Equal(t, want, describeCron(expr), expr)
	}
}

// slots lists the slots of expr in tz in (from, to].
func slots(t *testing.T, expr, tz string, from, to time.Time) []string {
	t.Helper()
	c, err := parseCron(expr, tz)
	require.NoError(t, err)
	var out []string
	for s := c.next(from); !s.After(to); s = c.next(s) {
		require.Equal(t, time.UTC, s.Location())
		out = append(out, s.Format(time.RFC3339))
	}
	return out
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// Across New York's DST changes the slots are what robfig/cron makes of
// them: a daily 02:30 does not exist on the spring-forward day and is
// skipped, an hourly expression stays hourly in absolute time (23 slots on
// the short day, 25 on the long one), and a time in the repeated hour of
// the fall-back day fires in both.
func TestCronSlots_AcrossDSTInNewYork(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, ny) }

	require.Equal(t, []string{
		"2026-03-07T07:30:00Z", // 02:30 EST
		"2026-03-09T06:30:00Z", // 02:30 EDT; 2026-03-08 02:30 never was
		"2026-03-10T06:30:00Z",
	}, slots(t, "30 2 * * *", "America/New_York", day(2026, 3, 7), day(2026, 3, 10).Add(12*time.Hour)))

	require.Equal(t, []string{
		"2026-10-31T06:30:00Z", // 02:30 EDT
		"2026-11-01T07:30:00Z", // 02:30 EST: once, after the repeated hour
		"2026-11-02T07:30:00Z",
	}, slots(t, "30 2 * * *", "America/New_York", day(2026, 10, 31), day(2026, 11, 2).Add(12*time.Hour)))

	require.Equal(t, []string{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"},
		slots(t, "30 1 * * *", "America/New_York", day(2026, 11, 1), day(2026, 11, 2)),
		"01:30 happens twice on the fall-back day, EDT then EST, and fires twice")

	for _, tc := range []struct {
		from time.Time
		want int
	}{{day(2026, 3, 8), 23}, {day(2026, 3, 9), 24}, {day(2026, 11, 1), 25}} {
		got := slots(t, "0 * * * *", "America/New_York", tc.from.Add(-time.Second), tc.from.AddDate(0, 0, 1).Add(-time.Second))
		require.Len(t, got, tc.want, "hourly slots on the local day of %s", tc.from.Format(time.DateOnly))
		for i := 1; i < len(got); i++ {
			a, _ := time.Parse(time.RFC3339, got[i-1])
			b, _ := time.Parse(time.RFC3339, got[i])
			require.Equal(t, time.Hour, b.Sub(a), "hourly in absolute time across the change: %v", got)
		}
	}

	// The same expression in UTC is not moved by New York's clocks.
	require.Equal(t, []string{"2026-03-08T02:30:00Z", "2026-03-09T02:30:00Z"},
		slots(t, "30 2 * * *", "", day(2026, 3, 7).Add(20*time.Hour), day(2026, 3, 9).Add(time.Hour)))
}

// @every slots fall on multiples of the interval, whatever the time asked
// from, so that every node computes the same ones.
func TestCronSlots_EveryIsAligned(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	require.Equal(t, []string{"2030-01-01T12:00:30Z", "2030-01-01T12:01:00Z", "2030-01-01T12:01:30Z"},
		slots(t, "@every 30s", "", base.Add(10*time.Second+time.Millisecond), base.Add(100*time.Second)))
	require.Equal(t, []string{"2030-01-01T12:00:30Z"},
		slots(t, "@every 30s", "Asia/Kolkata", base, base.Add(30*time.Second)), "the zone does not move @every")
	c, err := parseCron("@every 1h", "")
	require.NoError(t, err)
	require.Equal(t, base.Add(time.Hour), c.next(base.Add(17*time.Minute)))
	require.Equal(t, base.Add(time.Hour), c.next(base))
}

// A leading sixth field is seconds.
func TestCronSlots_SecondsField(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	require.Equal(t, []string{"2030-01-01T12:00:15Z", "2030-01-01T12:02:15Z", "2030-01-01T12:04:15Z"},
		slots(t, "15 */2 * * * *", "", base, base.Add(5*time.Minute)))
	require.Equal(t, []string{"2030-01-01T12:00:10Z", "2030-01-01T12:00:20Z"},
		slots(t, "*/10 * * * * *", "", base.Add(time.Second), base.Add(25*time.Second)))
	require.Equal(t, []string{"2030-01-01T12:05:00Z"},
		slots(t, "*/5 * * * *", "", base, base.Add(5*time.Minute)), "five fields: seconds are 0")
}

func TestCronLastIn(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expr         string
		lower, upper time.Time
		want         time.Time // zero: none
	}{
		{"*/5 * * * *", base, base.Add(12 * time.Minute), base.Add(10 * time.Minute)},
		{"*/5 * * * *", base, base.Add(5 * time.Minute), base.Add(5 * time.Minute)},
		{"*/5 * * * *", base, base.Add(4 * time.Minute), time.Time{}},
		{"*/5 * * * *", base.Add(5 * time.Minute), base.Add(5 * time.Minute), time.Time{}},
		{"0 3 * * *", base.AddDate(0, 0, -40), base, base.Add(-9 * time.Hour)},
		{"0 3 1 1 *", base.AddDate(-3, 0, 0), base, base.Add(-9 * time.Hour)},
		{"0 3 1 1 *", base.AddDate(-3, 0, 0), base.Add(-10 * time.Hour), base.AddDate(-1, 0, 0).Add(-9 * time.Hour)},
		{"0 3 1 1 *", base.Add(-8 * time.Hour), base.AddDate(0, 11, 0), time.Time{}},
		{"* * * * * *", base.AddDate(-1, 0, 0), base.Add(1500 * time.Millisecond), base.Add(time.Second)},
		{"@every 30s", base, base.Add(59 * time.Second), base.Add(30 * time.Second)},
		{"@every 30s", base, base.Add(29 * time.Second), time.Time{}},
		{"@every 30s", base.AddDate(-1, 0, 0), base, base},
	} {
		c, err := parseCron(tc.expr, "")
		require.NoError(t, err)
		got, ok := c.lastIn(tc.lower, tc.upper)
		require.Equal(t, !tc.want.IsZero(), ok, "%s in (%s, %s]", tc.expr, tc.lower, tc.upper)
		require.True(t, tc.want.Equal(got), "%s in (%s, %s]: got %s, want %s", tc.expr, tc.lower, tc.upper, got, tc.want)
	}
}

// What a schedule does at a round: the latest slot runs if less than a
// minute late; older ones are missed, skipped or caught up by one job
// keyed by the latest of them.
func TestPlanSlots(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	every5m, err := parseCron("*/5 * * * *", "")
	require.NoError(t, err)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	for _, tc := range []struct {
		name         string
		lower, now   time.Time
		policy       domain.CatchUp
		catchUp, due time.Time
	}{
		{"nothing yet", at(0), at(4 * time.Minute), domain.CatchUpSkip, time.Time{}, time.Time{}},
		{"on time", at(0), at(5 * time.Minute), domain.CatchUpSkip, time.Time{}, at(5 * time.Minute)},
		{"a little late", at(0), at(5*time.Minute + 59*time.Second), domain.CatchUpOne, time.Time{}, at(5 * time.Minute)},
		{"a minute late: missed, skipped", at(0), at(6 * time.Minute), domain.CatchUpSkip, time.Time{}, time.Time{}},
		{"a minute late: missed, caught up", at(0), at(6 * time.Minute), domain.CatchUpOne, at(5 * time.Minute), time.Time{}},
		{"down an hour, skip", at(0), at(60*time.Minute + 10*time.Second), domain.CatchUpSkip, time.Time{}, at(60 * time.Minute)},
		{"down an hour, one", at(0), at(60*time.Minute + 10*time.Second), domain.CatchUpOne, at(55 * time.Minute), at(60 * time.Minute)},
		{"down an hour, between slots, one", at(0), at(62 * time.Minute), domain.CatchUpOne, at(60 * time.Minute), time.Time{}},
		{"settled", at(60 * time.Minute), at(62 * time.Minute), domain.CatchUpOne, time.Time{}, time.Time{}},
		{"only the due slot is new", at(55 * time.Minute), at(60 * time.Minute), domain.CatchUpOne, time.Time{}, at(60 * time.Minute)},
	} {
		catchUp, due := planSlots(every5m, tc.lower, tc.now, tc.policy)
		require.True(t, tc.catchUp.Equal(catchUp), "%s: catch-up %s, want %s", tc.name, catchUp, tc.catchUp)
		require.True(t, tc.due.Equal(due), "%s: due %s, want %s", tc.name, due, tc.due)
	}
}

func TestCronSlots_NeverBeforeTheLowerBound(t *testing.T) {
	t.Parallel()
	// A slot equal to the bound is settled: strictly after only.
	c, err := parseCron("0 * * * *", "")
	require.NoError(t, err)
	h := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	require.Equal(t, h.Add(time.Hour), c.next(h))
	_, ok := c.lastIn(h, h)
	require.False(t, ok)
	require.False(t, strings.Contains(describeCron("0 * * * *"), "*"))
}
