package client_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/stretchr/testify/require"

	troupehttp "github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/http/client"
)

// clientMethods maps every operation of the server's OpenAPI document to
// the Client method that calls it.
var clientMethods = map[string]string{
	"submitJob":       "Submit",
	"listJobs":        "List",
	"submitJobs":      "SubmitBatch",
	"getJob":          "Get",
	"cancelJob":       "Cancel",
	"retryJob":        "Retry",
	"streamJobEvents": "Wait", // and JobEvents
	"streamEvents":    "Events",
	"getStats":        "Stats",
	"listQueues":      "Queues",
	"pauseQueue":      "PauseQueue",
	"resumeQueue":     "ResumeQueue",
	"setQueue":        "SetQueue",
	"listSchedules":   "Schedules",
	"putSchedule":     "PutSchedule",
	"getSchedule":     "Schedule",
	"deleteSchedule":  "DeleteSchedule",
	"pauseSchedule":   "PauseSchedule",
	"resumeSchedule":  "ResumeSchedule",
	"triggerSchedule": "TriggerSchedule",
	"listJobTypes":    "JobTypes",
	"getHealth":       "Health",
	"getMetrics":      "Metrics",
	"getBackup":       "Backup",
	"getOpenAPI":      "OpenAPI",
	// The worker protocol.
	"claimJobs":      "Claim",
	"heartbeatJob":   "Heartbeat",
	"completeJob":    "Complete",
	"failJob":        "Fail",
	"reportOutcomes": "ReportOutcomes",
}

// forBrowsers are the operations that serve HTML pages to people, which a
// program has no use for.
var forBrowsers = map[string]bool{"getDocs": true, "getDashboard": true}

// workerRoutes are the routes of the worker protocol, which the client
// must cover whatever their operationIds.
var workerRoutes = map[string]string{
	"POST /workers/claim":       "Claim",
	"POST /jobs/{id}/heartbeat": "Heartbeat",
	"POST /jobs/{id}/complete":  "Complete",
	"POST /jobs/{id}/fail":      "Fail",
	"POST /workers/outcomes":    "ReportOutcomes",
}

func TestEveryOperationHasAClientMethod(t *testing.T) {
	t.Parallel()
	doc, err := yaml.Parser().Unmarshal(troupehttp.OpenAPISpec())
	require.NoError(t, err)
	paths, ok := doc["paths"].(map[string]any)
	require.True(t, ok, "the document has paths")
	typ := reflect.TypeFor[*client.Client]()
	routes := map[string]string{} // "METHOD /path" → operationId
	var missing []string
	for path, item := range paths {
		ops, ok := item.(map[string]any)
		require.True(t, ok, path)
		for method, op := range ops {
			o, ok := op.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			id, _ := o["operationId"].(string)
			require.NotEmpty(t, id, "%s %s has an operationId", method, path)
			routes[strings.ToUpper(method)+" "+path] = id
			if forBrowsers[id] {
				continue
			}
			name, ok := clientMethods[id]
			if !ok {
				if name, ok = workerRoutes[strings.ToUpper(method)+" "+path]; !ok {
					missing = append(missing, id+" ("+strings.ToUpper(method)+" "+path+")")
					continue
				}
			}
			_, ok = typ.MethodByName(name)
			require.True(t, ok, "operation %s: Client has no method %s", id, name)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "operations without a client method")
	require.Contains(t, routes, "POST /jobs", "the document was read")
	for route, name := range workerRoutes {
		require.Contains(t, routes, route, "the document describes the worker protocol")
		_, ok := typ.MethodByName(name)
		require.True(t, ok, "%s: Client has no method %s", route, name)
	}
}
