package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestCarrierRoundTrip: a traceparent in any case is read, and injecting
// replaces it rather than adding a second one.
func TestCarrierRoundTrip(t *testing.T) {
	in := map[string][]string{"TraceParent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	ctx := Extract(context.Background(), in)
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
		t.Fatalf("extracted %v", sc)
	}
	out := map[string][]string{"traceparent": {"stale"}, "TRACEPARENT": {"stale"}}
	Inject(ctx, out)
	if len(out) != 1 || out["traceparent"][0] != in["TraceParent"][0] {
		t.Errorf("injected %v", out)
	}
	empty := map[string][]string{}
	Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("injected without a trace: %v", empty)
	}
}
