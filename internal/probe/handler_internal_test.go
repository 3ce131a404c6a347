package probe

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

// TestHandlerBusy: with every slot taken, a declared target is refused with 503 and nothing
// is probed (the target is never dialled: no slot, no run).
func TestHandlerBusy(t *testing.T) {
	p := &policy.Policy{}
	h, err := NewHandler(HandlerOptions{Policy: func() *policy.Policy { return p }, Targets: []Target{{Host: "127.0.0.1"}}, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/probe?target=127.0.0.1", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("%d, want 503", rec.Code)
	}
	<-h.slots
}
