package http

import "testing"

// BenchmarkDecodeJob measures the decoding and checks of a typical POST
// /jobs body, the part of a submission's cost this package adds.
func BenchmarkDecodeJob(b *testing.B) {
	s := setup(b, Config{}).server
	body := []byte(`{"type":"send_email","payload":{"to":"ada@example.com","subject":"Welcome","template":"welcome-v2","locale":"en-GB"},"maxAttempts":5,"queue":"mail","priority":3}`)
	b.ReportAllocs()
	for b.Loop() {
		var req SubmitRequest
		if err := s.decodeJob(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}
