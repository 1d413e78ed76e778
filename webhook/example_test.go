package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/troupe-go/troupe/webhook"
)

// A Go receiver checks each call's signature against the raw body before
// it trusts the call.
func ExampleVerify() {
	secret := []byte("whsec_from_your_config")
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// The call is Troupe's: do the job, then answer with its result.
		fmt.Fprint(w, `{"done": true}`)
	})

	// What Troupe sends, signed and then forged.
	body := `{"id":"0190f3c4-0000-7000-8000-000000000000","type":"resize","attempt":1,"payload":{}}`
	for _, signature := range []string{
		webhook.Sign(secret, time.Now(), []byte(body)),
		webhook.Sign([]byte("guessed"), time.Now(), []byte(body)),
	} {
		req := httptest.NewRequest(http.MethodPost, "/jobs", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, signature)
		w := httptest.NewRecorder()
		receiver.ServeHTTP(w, req)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 200 {"done": true}
	// 401 invalid webhook signature: no signature matches the body
}
