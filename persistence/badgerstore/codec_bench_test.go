package badgerstore

import (
	"testing"
	"time"

	"github.com/troupe-go/troupe/domain"
)

// benchPlainJob is a job as most are: a small payload, default queue and
// priority, no result or progress.
func benchPlainJob(b *testing.B) *domain.Job {
	b.Helper()
	now := time.Date(2025, 6, 1, 12, 30, 0, 123456000, time.UTC)
	j, err := domain.NewJob("send_email", []byte(`{"to":"ada@example.com"}`), 3, now)
	if err != nil {
		b.Fatal(err)
	}
	j.Status, j.Attempts, j.StartedAt = domain.StatusRunning, 1, now.Add(time.Second)
	return j
}

func BenchmarkEncodePlainJob(b *testing.B) {
	j := benchPlainJob(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encode(nil, j); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePlainJob(b *testing.B) {
	v, err := encode(nil, benchPlainJob(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(v)), "bytes/snapshot")
}
