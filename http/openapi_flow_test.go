package http

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
)

// flowConformanceCases are the exchanges of flow control: queue settings,
// the queues that show them, and jobs with a key and a reason to wait.
func flowConformanceCases() []conformanceCase {
	setQueue := func(err error) func(*testing.T, *fakeService) {
		return func(_ *testing.T, svc *fakeService) {
			stored := settingsStored(new(domain.QueueSettings))
			svc.SetQueueSettingsFunc = func(ctx context.Context, name string, s domain.QueueSettings) (actors.QueueInfo, error) {
				if err != nil {
					return actors.QueueInfo{}, err
				}
				return stored(ctx, name, s)
			}
		}
	}
	limited := func(_ *testing.T, svc *fakeService) {
		svc.QueuesFunc = func(context.Context) ([]actors.QueueInfo, error) {
			return []actors.QueueInfo{
				{QueueInfo: domain.QueueInfo{Name: "api", Pending: 57, Running: 10, Settings: domain.QueueSettings{
					Limit:   10,
					Rate:    &domain.Rate{Count: 20, Per: time.Second, Burst: 40},
					PerKey:  &domain.KeyLimits{Limit: 1, Rate: &domain.Rate{Count: 5, Per: time.Minute}},
					Ordered: true, Fair: true,
				}}, Waiting: map[domain.WaitReason]int{
					domain.WaitQueueLimit: 41, domain.WaitQueueRate: 1, domain.WaitKeyLimit: 2, domain.WaitKeyOrder: 12, domain.WaitKeyRate: 4,
				}},
				{QueueInfo: domain.QueueInfo{Name: "sync", Settings: domain.QueueSettings{PerKey: &domain.KeyLimits{Rate: &domain.Rate{Count: 1, Per: time.Hour}}}}},
				{QueueInfo: domain.QueueInfo{Name: "zeta"}, Limit: 3},
			}, nil
		}
	}
	keyed := func(t *testing.T) *domain.Job {
		j := newTestJob(t, domain.StatusPending)
		j.ID = uuid.MustParse("0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11")
		j.Queue, j.Key, j.WaitingFor = "api", "customer:42", domain.WaitKeyOrder
		return j
	}
	holdKeyed := func(t *testing.T, svc *fakeService) { svc.holdOnly(keyed(t)) }
	submitKeyed := func(_ *testing.T, svc *fakeService) {
		svc.SubmitFunc = func(_ context.Context, p actors.SubmitParams) (*domain.Job, error) {
			j, err := domain.NewJob(p.Type, p.Payload, 3, testTime)
			if err == nil {
				j.Key = p.Key
			}
			return j, err
		}
		svc.SubmitBatchFunc = func(_ context.Context, ps []actors.SubmitParams) ([]actors.SubmitResult, error) {
			out := make([]actors.SubmitResult, len(ps))
			for i, p := range ps {
				j, err := domain.NewJob(p.Type, p.Payload, 3, testTime)
				if err != nil {
					return nil, err
				}
				j.Key = p.Key
				out[i] = actors.SubmitResult{Job: j, Created: true}
			}
			return out, nil
		}
	}
	put := func(body string) request { return request{method: "PUT", target: "/queues/api", body: body} }
	return []conformanceCase{
		// PUT /queues/{name}
		{name: "QueueSet", arrange: setQueue(nil), requestValid: true, status: 200,
			req: put(`{"limit":10,"rate":{"count":20,"per":"1s","burst":20},"perKey":{"limit":1,"rate":{"count":5,"per":"1m"}},"ordered":true,"fair":true}`)},
		{name: "QueueSetRateOnly", arrange: setQueue(nil), requestValid: true, status: 200,
			req: put(`{"rate":{"count":100,"per":"500ms"}}`)},
		{name: "QueueSetPerKeyRateOnly", arrange: setQueue(nil), requestValid: true, status: 200,
			req: put(`{"perKey":{"rate":{"count":1,"per":"1h"}},"fair":true}`)},
		{name: "QueueSetClear", arrange: setQueue(nil), requestValid: true, status: 200, req: put(`{}`)},
		{name: "QueueSetNulls", arrange: setQueue(nil), requestValid: true, status: 200, req: put(`{"rate":null,"perKey":null}`)},
		{name: "QueueSetLimitNegative", arrange: setQueue(nil), requestValid: false, status: 400, req: put(`{"limit":-1}`)},
		{name: "QueueSetRateCountZero", arrange: setQueue(nil), requestValid: false, status: 400, req: put(`{"rate":{"count":0,"per":"1s"}}`)},
		{name: "QueueSetRatePerNegative", arrange: setQueue(nil), requestValid: true, status: 400, req: put(`{"rate":{"count":1,"per":"-1s"}}`)},
		{name: "QueueSetRateBurstNegative", arrange: setQueue(nil), requestValid: false, status: 400, req: put(`{"rate":{"count":1,"per":"1s","burst":-1}}`)},
		{name: "QueueSetPerKeyEmpty", arrange: setQueue(nil), requestValid: true, status: 400, req: put(`{"perKey":{}}`)},
		{name: "QueueSetPerKeyLimitNegative", arrange: setQueue(nil), requestValid: false, status: 400, req: put(`{"perKey":{"limit":-1}}`)},
		{name: "QueueSetPerKeyRateCountZero", arrange: setQueue(nil), requestValid: false, status: 400, req: put(`{"perKey":{"rate":{"count":0,"per":"1m"}}}`)},
		{name: "QueueSetPerKeyRatePerZero", arrange: setQueue(nil), requestValid: true, status: 400, req: put(`{"perKey":{"rate":{"count":1,"per":"0s"}}}`)},
		{name: "QueueSetPerKeyRateBurstNegative", arrange: setQueue(nil), requestValid: false, status: 400, req: put(`{"perKey":{"rate":{"count":1,"per":"1m","burst":-1}}}`)},
		{name: "QueueSetOrderedWithoutPerKey", arrange: setQueue(nil), requestValid: true, status: 400, req: put(`{"ordered":true}`)},
		{name: "QueueSetPerNotADuration", requestValid: true, status: 400, req: put(`{"rate":{"count":1,"per":"a second"}}`)},
		{name: "QueueSetPerMissing", requestValid: false, status: 400, req: put(`{"rate":{"count":1}}`)},
		{name: "QueueSetUnknownMember", requestValid: false, status: 400, req: put(`{"limit":1,"concurrency":2}`)},
		{name: "QueueSetUnknownRateMember", requestValid: false, status: 400, req: put(`{"rate":{"count":1,"per":"1s","window":"1m"}}`)},
		{name: "QueueSetNotJSON", requestValid: false, status: 400, req: put(`{"limit":`)},
		{name: "QueueSetBadName", requestValid: false, status: 400, req: request{method: "PUT", target: "/queues/E-mail", body: `{}`}},
		{name: "QueueSetUnauthorized", anonymous: true, requestValid: false, status: 401, req: put(`{}`)},
		{name: "QueueSetTextPlain", requestValid: false, status: 415,
			req: request{method: "PUT", target: "/queues/api", body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}},
		{name: "QueueSetInternal", arrange: setQueue(errors.New("disk on fire")), requestValid: true, status: 500, req: put(`{}`)},
		{name: "QueueSetUnavailable", arrange: setQueue(domain.ErrUnavailable), requestValid: true, status: 503, req: put(`{}`)},

		// GET /queues with settings and waiting counts
		{name: "QueuesWithSettingsAndWaiting", arrange: limited, requestValid: true, status: 200,
			req: request{method: "GET", target: "/queues"}},
		{name: "StatsWithSettingsAndWaiting", arrange: func(t *testing.T, svc *fakeService) {
			limited(t, svc)
			svc.ListFunc = func(context.Context, domain.Filter) (domain.Page, error) { return domain.Page{}, nil }
		}, requestValid: true, status: 200, req: request{method: "GET", target: "/stats"}},

		// Jobs with a key, waiting for a flow setting
		{name: "JobWithKeyAndWaitingFor", arrange: holdKeyed, requestValid: true, status: 200,
			req: request{method: "GET", target: "/jobs/0195a3c4-7b1e-7c3a-9f1d-2b8e4a6c0d11"}},
		{name: "ListByKey", arrange: holdKeyed, requestValid: true, status: 200,
			req: request{method: "GET", target: "/jobs?key=customer:42&status=pending"}},
		{name: "ListByKeyTooLong", requestValid: false, status: 400,
			req: request{method: "GET", target: "/jobs?key=" + strings.Repeat("k", domain.MaxKeyLength+1)}},
		{name: "SubmitWithKey", arrange: submitKeyed, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","queue":"api","key":"customer:42"}`}},
		{name: "SubmitKeyEmpty", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs", body: `{"type":"noop","key":""}`}},
		{name: "BatchWithKeys", arrange: submitKeyed, requestValid: true, status: 201,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","key":"a"},{"type":"noop","key":"b"}]}`}},
		{name: "BatchKeyTooLong", requestValid: false, status: 400,
			req: request{method: "POST", target: "/jobs/batch", body: `{"jobs":[{"type":"noop","key":"` + strings.Repeat("k", 256) + `"}]}`}},
	}
}
