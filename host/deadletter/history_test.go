package deadletter

import (
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
)

// TestParseHistory reads both formats bw_attempts holds: the record of
// this release and the bare error array of older ones.
func TestParseHistory(t *testing.T) {
	h, err := ParseHistory([]byte(`{"errors":[{"attempt":1,"at_unix_ms":5,"kind":"status","status":500,"message":"down"},{"attempt":1,"kind":"internal","message":"lost ack"}],"result":{"outcome":"dead","attempts":1}}`))
	if err != nil || len(h.Errors) != 2 || h.Errors[0].Status != 500 || h.Result == nil || h.Result.Outcome != "dead" || h.TargetCalls() != 1 {
		t.Fatalf("record: %v %+v", err, h)
	}
	h, err = ParseHistory([]byte(` [{"attempt":1,"kind":"timeout","message":"slow"}]`))
	if err != nil || len(h.Errors) != 1 || h.Errors[0].Kind != abi.ErrorKind("timeout") || h.Result != nil {
		t.Fatalf("old array: %v %+v", err, h)
	}
	if _, err := ParseHistory([]byte(`{`)); err == nil {
		t.Fatal("invalid JSON accepted")
	}
}

// TestHistoryKey matches host/pipeline's historyKey: <route>.<seq>.
func TestHistoryKey(t *testing.T) {
	if k := HistoryKey("orders", 42); k != "orders.42" {
		t.Fatalf("key %q", k)
	}
}
