package http

import (
	"errors"

	"github.com/troupe-go/troupe/domain"
)

// unavailableRetryAfter is the Retry-After, in seconds, of a 503 for a part
// that is down (a database restarting, a runtime starting or stopping):
// long enough not to hammer it, short enough to notice its return soon.
const unavailableRetryAfter = "5"

// storeFault is a kind of error of the store or the runtime whose message
// may carry details of the infrastructure (a driver's text with a host,
// a user or a file path). Clients get the kind's own words instead; the
// full error goes to the log under the request ID.
type storeFault struct {
	err error
	// state is what /health shows for a part failing this way.
	state string
	// detail is the problem detail, before the request ID.
	detail string
	// ours marks a state of Troupe's own, not of its infrastructure: its
	// error holds nothing to hide and nothing for the log.
	ours bool
}

// storeFaults are the faults told apart, in order: a full disk or damaged
// data is more telling than the unavailability it also causes.
var storeFaults = []storeFault{
	{domain.ErrStorageFull, "disk full", "the store is out of disk space; retry later", false},
	{domain.ErrCorrupt, "corrupt", "the store is damaged and must be restored from a backup", false},
	{domain.ErrClosed, "closed", "the store is closed; retry later", false},
	{domain.ErrUnavailable, "unavailable", "the store is unavailable; retry later", false},
	{domain.ErrNotRunning, "not running", "the job system is not running (starting or stopping); retry later", true},
}

// findStoreFault returns the fault err is, if any.
func findStoreFault(err error) (storeFault, bool) {
	for _, f := range storeFaults {
		if errors.Is(err, f.err) {
			return f, true
		}
	}
	return storeFault{}, false
}

// publicState is what a client may read about a part that is down: a
// message Troupe marked as public (domain.Public), else the name of its
// fault, else nothing.
func publicState(err error) string {
	if msg, ok := domain.PublicMessage(err); ok {
		return msg
	}
	if f, ok := findStoreFault(err); ok {
		return f.state
	}
	return ""
}

// faultDetail is the problem detail of a fault: the public message when
// there is one, else the fault's own words, and for a fault of the
// infrastructure the request ID under which the log has the rest.
func faultDetail(err error, f storeFault, requestID string) string {
	detail := f.detail
	if msg, ok := domain.PublicMessage(err); ok {
		detail = "the store refused the request: " + msg
	}
	if f.ours {
		return detail
	}
	return detail + "; the server's log has the details under request ID " + requestID
}
