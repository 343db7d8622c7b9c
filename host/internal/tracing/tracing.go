package tracing

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of the runtime's spans.
const Name = "github.com/breakwater-dev/breakwater"

// Span attribute keys.
const (
	AttrRoute         = attribute.Key("breakwater.route")
	AttrMessageID     = attribute.Key("breakwater.message_id")
	AttrDelivery      = attribute.Key("breakwater.delivery")
	AttrAttempt       = attribute.Key("breakwater.attempt")
	AttrTarget        = attribute.Key("breakwater.target")
	AttrOutcome       = attribute.Key("breakwater.outcome")
	AttrErrorKind     = attribute.Key("breakwater.error_kind")
	AttrStatus        = attribute.Key("breakwater.status")
	AttrPolicy        = attribute.Key("breakwater.policy")
	AttrModule        = attribute.Key("breakwater.module")
	AttrModuleVersion = attribute.Key("breakwater.module.version")
	AttrFuel          = attribute.Key("breakwater.module.fuel")
)

// Options configure New.
type Options struct {
	// Endpoint is the OTLP/HTTP endpoint URL (e.g. http://127.0.0.1:4318);
	// "" turns tracing off.
	Endpoint string
	// Sampling is the share of traces recorded (0..1) when the producer's
	// trace context does not say; a sampled parent is always followed.
	Sampling float64
	// ServiceName names the runtime in traces (default "breakwater").
	ServiceName string
}

// New returns the tracer provider Options ask for and the function that
// flushes and stops it. Off, it is a no-op provider.
func New(ctx context.Context, o Options) (trace.TracerProvider, func(context.Context) error, error) {
	if o.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing.endpoint %s: %w", o.Endpoint, err)
	}
	name := o.ServiceName
	if name == "" {
		name = "breakwater"
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.Sampling))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
	)
	return tp, tp.Shutdown, nil
}

// propagator reads and writes W3C trace context.
var propagator = propagation.TraceContext{}

// Carrier adapts message headers (NATS or HTTP: map[string][]string) for
// propagation. Reading is case-insensitive (NATS headers keep the case a
// producer used); writing replaces any case variant.
type Carrier map[string][]string

// Get implements propagation.TextMapCarrier.
func (c Carrier) Get(key string) string {
	if v, ok := c[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set implements propagation.TextMapCarrier.
func (c Carrier) Set(key, value string) {
	for k := range c {
		if strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys implements propagation.TextMapCarrier.
func (c Carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx with the trace context of headers h, if any.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	if h == nil || Carrier(h).Get("traceparent") == "" {
		return ctx // the common case: no trace context, nothing to parse
	}
	return propagator.Extract(ctx, Carrier(h))
}

// Inject writes ctx's trace context into headers h (nothing when ctx has
// none).
func Inject(ctx context.Context, h map[string][]string) {
	if h == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, Carrier(h))
}

// Noop is a tracer that records nothing (an incoming trace context still
// travels on).
func Noop() trace.Tracer { return noop.NewTracerProvider().Tracer(Name) }
