package telemetry

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/engine"
)

// Metrics holds every collector. Methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	outcomes       *prometheus.CounterVec
	attempts       *prometheus.CounterVec
	targetLatency  *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	policyFails    *prometheus.CounterVec
	redelivered    *prometheus.CounterVec
	repliesRefused *prometheus.CounterVec
	inFlight       *prometheus.GaugeVec
	pending        *prometheus.GaugeVec
	ackPending     *prometheus.GaugeVec
	redeliveries   *prometheus.GaugeVec

	moduleLatency *prometheus.HistogramVec
	moduleFuel    *prometheus.HistogramVec
	breaches      *prometheus.CounterVec
	quarantines   *prometheus.CounterVec
	moduleVersion *prometheus.GaugeVec
	breakerState  *prometheus.GaugeVec
	flag          *prometheus.GaugeVec
	coalesced     *prometheus.CounterVec
	ejected       *prometheus.GaugeVec
	ejections     *prometheus.CounterVec
	shadows       *prometheus.CounterVec
	rollbacks     *prometheus.CounterVec
	records       *prometheus.CounterVec
	recordsLost   prometheus.Counter
}

// New registers every metric (and the Go and process collectors) on a new
// registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_outcomes_total", Help: "Terminal outcomes by route and outcome (ok, cached, stub, dead; error on the sync path)."}, []string{"route", "outcome"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_target_attempts_total", Help: "Calls to targets by route, target and result (ok or the error kind)."}, []string{"route", "target", "result"})
	m.targetLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "breakwater_target_latency_seconds", Help: "Target call latency.",
		Buckets: prometheus.ExponentialBucketsRange(0.001, 30, 16)}, []string{"route", "target"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_retries_total", Help: "Retries scheduled."}, []string{"route"})
	m.policyFails = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_policy_fallbacks_total", Help: "Module decisions replaced by the native policy because the module failed."}, []string{"route", "kind", "module"})
	m.redelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_redelivered_total", Help: "Messages delivered again without a retry decision (crash or ack timeout)."}, []string{"route"})
	m.repliesRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_replies_refused_total", Help: "Bw-Reply-To subjects refused: invalid, too long, or outside the route's reply namespaces (the outcome is on bw.out)."}, []string{"route"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_in_flight", Help: "Messages being processed by this instance."}, []string{"route"})
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_consumer_pending", Help: "Messages waiting in the route's durable consumer."}, []string{"route"})
	m.ackPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_consumer_ack_pending", Help: "Messages delivered and not yet acked (including retries waiting)."}, []string{"route"})
	m.redeliveries = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_consumer_redelivered", Help: "Messages of the consumer delivered more than once."}, []string{"route"})
	m.moduleLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "breakwater_module_call_seconds", Help: "Policy module call latency, ABI encoding included.",
		Buckets: prometheus.ExponentialBucketsRange(1e-6, 0.1, 16)}, []string{"module", "version", "kind"})
	m.moduleFuel = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "breakwater_module_fuel_used", Help: "Fuel used per module call.",
		Buckets: prometheus.ExponentialBucketsRange(1e3, 1e9, 13)}, []string{"module", "version", "kind"})
	m.breaches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_module_breaches_total", Help: "Module calls that broke a limit or the ABI, by kind."}, []string{"module", "version", "breach"})
	m.quarantines = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_module_quarantined_total", Help: "Calls refused because the module is quarantined."}, []string{"module", "version"})
	m.moduleVersion = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_module_version_info", Help: "1 for the module version in use."}, []string{"module", "version"})
	m.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_breaker_state", Help: "1 for the target's current breaker state."}, []string{"target", "state"})
	m.flag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_switch_enabled", Help: "Kill switches: 1 on, 0 off (only switches that were set)."}, []string{"key"})
	m.coalesced = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_cache_coalesced_total", Help: "Read-through misses served by another request's call to the target (request coalescing)."}, []string{"route"})
	m.ejected = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "breakwater_target_ejected", Help: "1 while a route's target is ejected from balancing (outlier ejection)."}, []string{"route", "target"})
	m.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_target_ejections_total", Help: "Outlier ejections of a route's target."}, []string{"route", "target"})
	m.shadows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_shadow_decisions_total", Help: "Shadow module decisions by result: agree or diverge (with the current version), breach (the shadow failed, the current did not), skipped (too many in flight)."}, []string{"route", "kind", "module", "result"})
	m.rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_canary_rollbacks_total", Help: "Canaries rolled back automatically by this instance (their breach or error rate exceeded the current version's by the margin)."}, []string{"module", "version"})
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breakwater_decision_records_total", Help: "Decision records published to BW_DECISIONS."}, []string{"route"})
	m.recordsLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "breakwater_decision_records_dropped_total", Help: "Decision records dropped: the queue was full, or the record did not fit even with its payloads cut."})
	for _, c := range []prometheus.Collector{m.shadows, m.rollbacks, m.records, m.recordsLost, m.coalesced, m.ejected, m.ejections, m.outcomes, m.attempts, m.targetLatency, m.retries, m.policyFails, m.redelivered, m.repliesRefused, m.inFlight, m.pending, m.ackPending, m.redeliveries,
		m.moduleLatency, m.moduleFuel, m.breaches, m.quarantines, m.moduleVersion, m.breakerState, m.flag} {
		f(c)
	}
	return m
}

// Handler serves the registry (text exposition format).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics' registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Attempt implements pipeline.Observer.
func (m *Metrics) Attempt(route, target string, kind abi.ErrorKind, d time.Duration) {
	result := string(kind)
	if result == "" {
		result = "ok"
	}
	m.attempts.WithLabelValues(route, target, result).Inc()
	if d > 0 {
		m.targetLatency.WithLabelValues(route, target).Observe(d.Seconds())
	}
}

// Retry implements pipeline.Observer.
func (m *Metrics) Retry(route string, _ uint32, _ time.Duration) {
	m.retries.WithLabelValues(route).Inc()
}

// Outcome implements pipeline.Observer.
func (m *Metrics) Outcome(route, outcome string, _ uint32, _ time.Duration) {
	m.outcomes.WithLabelValues(route, outcome).Inc()
}

// PolicyFailed implements pipeline.Observer.
func (m *Metrics) PolicyFailed(route, kind, module string, _ error) {
	m.policyFails.WithLabelValues(route, kind, module).Inc()
}

// Coalesced implements attempt.Observer.
func (m *Metrics) Coalesced(route string) { m.coalesced.WithLabelValues(route).Inc() }

// Ejected implements attempt.Observer.
func (m *Metrics) Ejected(route, target string, out bool) {
	if out {
		m.ejections.WithLabelValues(route, target).Inc()
		m.ejected.WithLabelValues(route, target).Set(1)
		return
	}
	m.ejected.WithLabelValues(route, target).Set(0)
}

// Redelivered implements pipeline.Observer.
func (m *Metrics) Redelivered(route string) { m.redelivered.WithLabelValues(route).Inc() }

// ReplyRefused implements pipeline.Observer.
func (m *Metrics) ReplyRefused(route string) { m.repliesRefused.WithLabelValues(route).Inc() }

// InFlight implements pipeline.Observer.
func (m *Metrics) InFlight(route string, delta int) {
	m.inFlight.WithLabelValues(route).Add(float64(delta))
}

// ConsumerInfo records a route consumer's state.
func (m *Metrics) ConsumerInfo(route string, pending, ackPending, redelivered uint64) {
	m.pending.WithLabelValues(route).Set(float64(pending))
	m.ackPending.WithLabelValues(route).Set(float64(ackPending))
	m.redeliveries.WithLabelValues(route).Set(float64(redelivered))
}

// ModuleCall is the engine's OnCall hook.
func (m *Metrics) ModuleCall(r engine.CallReport) {
	m.moduleLatency.WithLabelValues(r.Module, r.Version, r.Kind).Observe(r.Duration.Seconds())
	if r.Fuel > 0 {
		m.moduleFuel.WithLabelValues(r.Module, r.Version, r.Kind).Observe(float64(r.Fuel))
	}
	switch {
	case r.Breach != "":
		m.breaches.WithLabelValues(r.Module, r.Version, string(r.Breach)).Inc()
	case errors.Is(r.Err, engine.ErrQuarantined):
		m.quarantines.WithLabelValues(r.Module, r.Version).Inc()
	}
}

// Shadow counts a shadow decision's result.
func (m *Metrics) Shadow(route, kind, module, result string) {
	m.shadows.WithLabelValues(route, kind, module, result).Inc()
}

// CanaryRollback counts a canary rolled back automatically.
func (m *Metrics) CanaryRollback(module, version, _ string) {
	m.rollbacks.WithLabelValues(module, version).Inc()
}

// DecisionRecorded counts a record published; DecisionRecordDropped one lost.
func (m *Metrics) DecisionRecorded(route string) { m.records.WithLabelValues(route).Inc() }
func (m *Metrics) DecisionRecordDropped()        { m.recordsLost.Inc() }

// ModuleVersion marks version as the one module serves with.
func (m *Metrics) ModuleVersion(module, version string) {
	m.moduleVersion.DeletePartialMatch(prometheus.Labels{"module": module})
	m.moduleVersion.WithLabelValues(module, version).Set(1)
}

// BreakerState records a target breaker's state.
func (m *Metrics) BreakerState(target, state string) {
	for _, s := range []string{"closed", "open", "half_open"} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.breakerState.WithLabelValues(target, s).Set(v)
	}
}

// Switch records a kill switch (key ending in .enabled).
func (m *Metrics) Switch(key, value string, deleted bool) {
	if !strings.HasSuffix(key, ".enabled") {
		return
	}
	if deleted {
		m.flag.DeleteLabelValues(key)
		return
	}
	v := 1.0
	if value == "false" {
		v = 0
	}
	m.flag.WithLabelValues(key).Set(v)
}
