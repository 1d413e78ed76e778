package actors

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/troupe-go/troupe/domain"
)

// cronFields are what an expression may hold: the standard five fields,
// an optional leading seconds field, and descriptors (@hourly, @daily,
// @every 30s).
const cronFields = cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor

// cronSpec is a schedule's expression read in its time zone: the slots
// it fires at.
type cronSpec struct {
	spec *cron.SpecSchedule // nil for @every
	// every is the interval of an @every expression.
	every time.Duration
}

// parseCron reads expr in the IANA zone tz (empty means UTC). Its errors
// wrap ErrInvalid and name the field at fault: "cron" or "timezone".
func parseCron(expr, tz string) (*cronSpec, error) {
	loc, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, invalidField("cron", "must not be empty")
	}
	// The library would read a zone prefix and override the timezone
	// field; one place for the zone keeps the two from disagreeing.
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, invalidField("cron", "%q: set the time zone in the timezone field, not in the expression", expr)
	}
	sched, err := parseCronSafely(expr)
	if err != nil {
		return nil, invalidField("cron", "%q: %w", expr, err)
	}
	var c cronSpec
	switch s := sched.(type) {
	case *cron.SpecSchedule:
		s.Location = loc
		c.spec = s
	case cron.ConstantDelaySchedule:
		if d, _ := strings.CutPrefix(expr, "@every"); mustParseDuration(d) < time.Second {
			return nil, invalidField("cron", "%q: @every needs an interval of at least 1s", expr)
		}
		c.every = s.Delay
	default:
		return nil, invalidField("cron", "%q: unsupported schedule %T", expr, sched)
	}
	return &c, nil
}

// checkCron is parseCron for a new schedule at now: it also refuses an
// expression such as "0 0 30 2 *", which parses but never fires (the
// library finds no slot within five years).
func checkCron(expr, tz string, now time.Time) error {
	c, err := parseCron(expr, tz)
	if err != nil {
		return err
	}
	if c.next(now).IsZero() {
		return invalidField("cron", "%q never fires", strings.TrimSpace(expr))
	}
	return nil
}

// parseCronSafely turns a panic of the parser on odd input into an error.
func parseCronSafely(expr string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("unreadable expression: %v", r)
		}
	}()
	return cron.NewParser(cronFields).Parse(expr)
}

func mustParseDuration(s string) time.Duration {
	d, _ := time.ParseDuration(strings.TrimSpace(s))
	return d
}

// loadZone reads an IANA zone name; empty means UTC. "Local" is refused:
// it would mean a different zone on each node.
func loadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	if tz == "Local" {
		return nil, invalidField("timezone", "%q is not an IANA zone name; name the zone", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, invalidField("timezone", "unknown time zone %q", tz)
	}
	return loc, nil
}

// next returns the first slot strictly after t, in UTC; zero if there is
// none within five years.
//
// @every slots are aligned on multiples of the interval (counted in UTC
// from the zero time): every node, and every life of a node, computes the
// same slots, which is what makes the slot's unique key the same
// everywhere. The library's own @every counts from whenever it is asked,
// which would give each node its own slots.
func (c *cronSpec) next(t time.Time) time.Time {
	if c.spec == nil {
		return t.Truncate(c.every).Add(c.every).UTC()
	}
	n := c.spec.Next(t)
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// lastSlotWindows are the spans lastIn searches back from its upper bound,
// widest last: a frequent expression is found in the first, a rare one
// after a few steps, and no search walks more slots than a window holds.
var lastSlotWindows = []time.Duration{
	2 * time.Minute, 2 * time.Hour, 50 * time.Hour, 32 * 24 * time.Hour,
	400 * 24 * time.Hour, 6 * 366 * 24 * time.Hour,
}

// lastIn returns the latest slot s with lower < s <= upper.
func (c *cronSpec) lastIn(lower, upper time.Time) (time.Time, bool) {
	if !upper.After(lower) {
		return time.Time{}, false
	}
	if c.spec == nil {
		s := upper.Truncate(c.every)
		if s.After(lower) {
			return s.UTC(), true
		}
		return time.Time{}, false
	}
	for i := 0; ; i++ {
		from := lower
		if i < len(lastSlotWindows) {
			if f := upper.Add(-lastSlotWindows[i]); f.After(lower) {
				from = f
			}
		}
		var last time.Time
		for t := c.next(from); !t.IsZero() && !t.After(upper); t = c.next(t) {
			last = t
		}
		if !last.IsZero() {
			return last, true
		}
		if from.Equal(lower) {
			return time.Time{}, false
		}
	}
}

// scheduleMissedAfter is how late a slot may be acted on as due. A slot
// older than this when a node gets to it (every node was down, or the
// schedule paused) is missed, and its schedule's catch-up policy decides.
const scheduleMissedAfter = time.Minute

// planSlots says what a schedule whose slots up to lower are settled does
// at now: due is the latest slot, when it is less than scheduleMissedAfter
// old; catchUp, with CatchUpOne, is the latest of the other slots in
// (lower, now], the one job standing for all of them. Either may be zero.
func planSlots(c *cronSpec, lower, now time.Time, policy domain.CatchUp) (catchUp, due time.Time) {
	latest, ok := c.lastIn(lower, now)
	if !ok {
		return time.Time{}, time.Time{}
	}
	missed := latest
	if now.Sub(latest) < scheduleMissedAfter {
		due = latest
		missed, ok = c.lastIn(lower, latest.Add(-time.Nanosecond))
	}
	if ok && policy == domain.CatchUpOne {
		catchUp = missed
	}
	return catchUp, due
}

// describeCron puts a cron expression in words for the common shapes
// ("every 5 minutes", "every day at 03:00", "every Monday at 09:30"), and
// returns the expression itself for the rest.
func describeCron(expr string) string {
	expr = strings.TrimSpace(expr)
	sched, err := parseCronSafely(expr)
	if err != nil {
		return expr
	}
	switch s := sched.(type) {
	case cron.ConstantDelaySchedule:
		return "every " + s.Delay.String()
	case *cron.SpecSchedule:
		if d := describeSpec(s); d != "" {
			return d
		}
	}
	return expr
}

// starBit is the library's mark of a field written "*" (or "?").
const starBit = 1 << 63

func describeSpec(s *cron.SpecSchedule) string {
	secs, mins, hours := fieldValues(s.Second, 0, 59), fieldValues(s.Minute, 0, 59), fieldValues(s.Hour, 0, 23)
	if !fieldFull(s.Month, 1, 12) {
		return ""
	}
	// The library matches a day when both day fields match if either is
	// "*", and when either matches otherwise.
	anyDom, anyDow := fieldFull(s.Dom, 1, 31), fieldFull(s.Dow, 0, 6)
	domStar, dowStar := s.Dom&starBit != 0, s.Dow&starBit != 0
	everyDay := anyDom && anyDow
	at, single := timeOfDay(secs, mins, hours)
	switch {
	case everyDay:
		return describeDaily(secs, mins, hours, at, single)
	case !single:
		return ""
	case domStar && !anyDow:
		days := fieldValues(s.Dow, 0, 6)
		if len(days) == 1 {
			return "every " + time.Weekday(days[0]).String() + " at " + at
		}
		if fmt.Sprint(days) == "[1 2 3 4 5]" {
			return "every weekday at " + at
		}
	case dowStar && !anyDom:
		if days := fieldValues(s.Dom, 1, 31); len(days) == 1 {
			return "every month on day " + strconv.Itoa(days[0]) + " at " + at
		}
	}
	return ""
}

func describeDaily(secs, mins, hours []int, at string, single bool) string {
	allSecs, allMins, allHours := len(secs) == 60, len(mins) == 60, len(hours) == 24
	zeroSec := len(secs) == 1 && secs[0] == 0
	switch {
	case single:
		return "every day at " + at
	case allSecs && allMins && allHours:
		return "every second"
	case !zeroSec:
		if k := fieldStep(secs, 60); k > 0 && allMins && allHours {
			return everyUnit(k, "second")
		}
		return ""
	case allMins && allHours:
		return "every minute"
	case allHours:
		if k := fieldStep(mins, 60); k > 0 {
			return everyUnit(k, "minute")
		}
		if len(mins) == 1 {
			if mins[0] == 0 {
				return "every hour"
			}
			return "every hour at minute " + strconv.Itoa(mins[0])
		}
	case len(mins) == 1:
		if k := fieldStep(hours, 24); k > 0 {
			if mins[0] == 0 {
				return everyUnit(k, "hour")
			}
			return everyUnit(k, "hour") + " at minute " + strconv.Itoa(mins[0])
		}
	}
	return ""
}

// everyUnit says "every minute" for 1 and "every 5 minutes" for 5.
func everyUnit(k int, unit string) string {
	if k == 1 {
		return "every " + unit
	}
	return "every " + strconv.Itoa(k) + " " + unit + "s"
}

// timeOfDay formats a single time of day ("03:00", "09:30:15") and
// reports whether the fields name one.
func timeOfDay(secs, mins, hours []int) (string, bool) {
	if len(secs) != 1 || len(mins) != 1 || len(hours) != 1 {
		return "", false
	}
	at := fmt.Sprintf("%02d:%02d", hours[0], mins[0])
	if secs[0] != 0 {
		at += fmt.Sprintf(":%02d", secs[0])
	}
	return at, true
}

// fieldValues lists the values a field's bits allow within [lo, hi].
func fieldValues(b uint64, lo, hi int) []int {
	var vs []int
	for v := lo; v <= hi; v++ {
		if b&(1<<uint(v)) != 0 {
			vs = append(vs, v)
		}
	}
	return vs
}

// fieldFull reports whether a field allows every value of [lo, hi].
func fieldFull(b uint64, lo, hi int) bool {
	return len(fieldValues(b, lo, hi)) == hi-lo+1
}

// fieldStep returns k when vs is 0, k, 2k, ... up to the end of a cycle of
// n that k divides (so that the gap across the cycle's end is k too), and
// 0 otherwise.
func fieldStep(vs []int, n int) int {
	if len(vs) < 2 || vs[0] != 0 {
		return 0
	}
	k := vs[1]
	if n%k != 0 || len(vs) != n/k {
		return 0
	}
	for i, v := range vs {
		if v != i*k {
			return 0
		}
	}
	return k
}
