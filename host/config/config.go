package config

import "time"

// Config is the whole configuration of a runtime process.
type Config struct {
	// File is the path the configuration was read from ("" when none).
	File string `mapstructure:"-"`
	// noRoutesOK: operator commands need no routes.
	noRoutesOK bool
	// rawRoutes are the routes as declared, before decoding (RouteDocuments).
	rawRoutes []any

	NATS      NATS      `mapstructure:"nats"`
	HTTP      HTTP      `mapstructure:"http"`
	Log       Log       `mapstructure:"log"`
	Streams   Streams   `mapstructure:"streams"`
	Modules   Modules   `mapstructure:"modules"`
	Decisions Decisions `mapstructure:"decisions"`
	Tracing   Tracing   `mapstructure:"tracing"`
	Routes    []Route   `mapstructure:"routes"`
}

// Tracing configures OpenTelemetry tracing. It is off unless Endpoint is
// set; even off, a producer's traceparent travels on to the target and the
// outcome.
type Tracing struct {
	// Endpoint is the OTLP/HTTP endpoint URL spans are exported to
	// (e.g. http://127.0.0.1:4318); "" turns tracing off.
	Endpoint string `mapstructure:"endpoint"`
	// Sampling is the share of traces recorded (0..1) when the producer's
	// trace context does not decide; a sampled parent is always followed.
	Sampling float64 `mapstructure:"sampling"`
	// ServiceName names the runtime in traces.
	ServiceName string `mapstructure:"service_name"`
}

// NATS says where the broker is: an external cluster when URL is set, else an
// embedded server started in-process.
type NATS struct {
	// URL of an external NATS server or cluster (comma-separated seeds).
	URL string `mapstructure:"url"`
	// User and Password authenticate to the server (external or embedded).
	User     string   `mapstructure:"user"`
	Password string   `mapstructure:"password"`
	Embedded Embedded `mapstructure:"embedded"`
	// Worker and Replies are the least-privilege identities of an external
	// server (see docs/security.md): Worker processes messages, Replies
	// only publishes to producers' reply subjects. Unset, they fall back to
	// User/Password and the runtime warns at start. The embedded server
	// makes these identities itself.
	Worker  Credentials `mapstructure:"worker"`
	Replies Credentials `mapstructure:"replies"`
	// InboxPrefix is the runtime's private inbox prefix (its request
	// replies, JetStream acks and deliveries). Producers must not be allowed
	// to subscribe to it.
	InboxPrefix string `mapstructure:"inbox_prefix"`
	// ConnectTimeout bounds how long start-up retries an external server
	// that is not (yet) reachable.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
}

// Credentials are a NATS user and password.
type Credentials struct {
	User     string `mapstructure:"user"`
	Password string `mapstructure:"password"`
}

// Embedded configures the in-process nats-server with JetStream.
type Embedded struct {
	// Host and Port the embedded server listens on for clients
	// (CLI, producers). Port -1 picks a random free port.
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"`
	// StoreDir holds JetStream's file storage. Default: $XDG_STATE_HOME/breakwater
	// (~/.local/state/breakwater), or ./data when there is no home directory.
	StoreDir string `mapstructure:"store_dir"`
	// MaxStore caps JetStream file storage in bytes (0: server default).
	MaxStore int64 `mapstructure:"max_store"`
	// Users turn on authentication. Role "admin" may do everything
	// (operators: set nats.user/nats.password to an admin for the CLI);
	// "producer" may only publish work (bw.in.<route>, bw.call.<route>) and
	// receive replies on its own inbox prefix _INBOX.<user> — it cannot
	// touch modules, flags or streams, nor read anyone else's replies.
	Users []User `mapstructure:"users"`
}

// User is an embedded-server identity.
type User struct {
	User     string `mapstructure:"user"`
	Password string `mapstructure:"password"`
	Role     string `mapstructure:"role"` // admin or producer
	// Routes limits a producer to these routes (empty: every route).
	Routes []string `mapstructure:"routes"`
}

// HTTP configures the operator endpoints (/healthz, /readyz, /metrics).
type HTTP struct {
	// Listen is host:port; keep it on loopback unless fronted by a proxy.
	Listen string `mapstructure:"listen"`
}

// Log configures structured logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // json or text
}

// Streams configures the JetStream streams and buckets Breakwater creates.
type Streams struct {
	// Replicas for every stream and bucket (1 embedded; 3 on a cluster).
	Replicas int `mapstructure:"replicas"`
	// DuplicateWindow is the de-duplication window of the Nats-Msg-Id header
	// on bw.in, bw.out and bw.dlq. It must exceed AckWait so that a crash
	// between publishing an outcome and acking the input is still detected.
	DuplicateWindow time.Duration `mapstructure:"duplicate_window"`
	// OutMaxAge is how long results stay on bw.out.> (0: forever).
	OutMaxAge time.Duration `mapstructure:"out_max_age"`
	// DLQMaxAge is how long dead letters stay on bw.dlq.> (0: forever).
	DLQMaxAge time.Duration `mapstructure:"dlq_max_age"`
	// AckWait is how long a delivered message may stay unacknowledged before
	// JetStream redelivers it (a crashed worker's messages come back after
	// it). While a delivery is being worked on, the runtime reports progress
	// every third of it, so it can be short.
	AckWait time.Duration `mapstructure:"ack_wait"`
	// PublishMaxPending bounds outstanding asynchronous publishes; beyond it
	// workers stall (back-pressure) instead of buffering without limit.
	PublishMaxPending int `mapstructure:"publish_max_pending"`
	// BrokerTimeout bounds every wait on the broker while processing: a
	// publish's ack, a KV read or write. After a failover a lost ack is
	// given up after it, and the message goes back to JetStream.
	BrokerTimeout time.Duration `mapstructure:"broker_timeout"`
	// InternalRetries bounds redeliveries beyond a route's max_attempts:
	// a message delivered max_attempts + internal_retries times is
	// dead-lettered with the last failure as its reason, whatever keeps
	// failing (an unavailable store, an outcome that cannot be published).
	InternalRetries int `mapstructure:"internal_retries"`
	// InternalRetryDelay is the wait before redelivering a message after an
	// internal failure.
	InternalRetryDelay time.Duration `mapstructure:"internal_retry_delay"`
}

// Modules configures where policy modules come from and how they run.
type Modules struct {
	// Dir holds built-in .wasm modules routes may name (default ./modules).
	Dir string `mapstructure:"dir"`
	// CacheDir holds wazero's compilation cache on disk. Default: next to
	// the default JetStream directory (…/breakwater/wasm-cache); "none"
	// keeps it in memory only.
	CacheDir string `mapstructure:"cache_dir"`
	// TrustedKeys are nkey public keys (U...) whose signatures are accepted;
	// when set, unsigned or wrongly signed modules are refused (secure mode).
	TrustedKeys []string `mapstructure:"trusted_keys"`
	// PoolSize is the number of warm instances per module version.
	PoolSize int `mapstructure:"pool_size"`
	// Limits are the default per-call limits of every module call.
	Limits Limits `mapstructure:"limits"`
	// Canary says when a canary version is rolled back automatically.
	Canary Canary `mapstructure:"canary"`
}

// Canary says when a canary module version (runtime module promote NAME vN
// --percent P) is rolled back automatically: when, over Window, its breach
// rate or its error rate exceeds the current version's by more than
// Margin, once it made MinCalls calls in the window.
type Canary struct {
	Window   time.Duration `mapstructure:"window"`
	Margin   float64       `mapstructure:"margin"`
	MinCalls int           `mapstructure:"min_calls"`
}

// Decisions configures the decision records (stream BW_DECISIONS).
type Decisions struct {
	// MaxAge and MaxBytes bound the stream; the oldest records go first.
	MaxAge   time.Duration `mapstructure:"max_age"`
	MaxBytes int64         `mapstructure:"max_bytes"`
	// Sample is the share (0..1) of the current versions' decisions
	// recorded on routes that do not set modules.record. Canary and
	// shadow decisions are always recorded.
	Sample float64 `mapstructure:"sample"`
}

// Limits bound one call into a policy module. In modules.limits every
// field must be positive; in a route's modules.<kind>.limits a zero field
// inherits modules.limits.
type Limits struct {
	Fuel        uint64        `mapstructure:"fuel"`
	WallTime    time.Duration `mapstructure:"wall_time"`
	MemoryPages uint32        `mapstructure:"memory_pages"`
	OutputBytes uint32        `mapstructure:"output_bytes"`
}

// Route is one unit of work: messages on bw.in.<Name> (async) and
// bw.call.<Name> (sync) are sent to Target under the route's guards.
type Route struct {
	// Name is a single NATS subject token: letters, digits, '-' and '_'.
	Name string `mapstructure:"name"`
	// Target is the route's one target; Targets, several (exactly one of
	// the two is set). After loading, Targets holds the route's targets
	// either way: read Targets.
	Target  Target   `mapstructure:"target"`
	Targets []Target `mapstructure:"targets"`
	// Strategy picks the target of an attempt among several: failover
	// (the default: in order, the next one within the same attempt when
	// one fails retryably or refuses), round_robin or least_pending (one
	// target per attempt; a retry goes to the next pick).
	Strategy string `mapstructure:"strategy"`
	// Outlier ejects failing targets from balancing for a while; nil: off.
	Outlier *Outlier `mapstructure:"outlier"`
	// singleTarget: Target was given (field names in errors say "target").
	singleTarget bool
	// bothTargets: target and targets were both given (a config error).
	bothTargets bool
	// Timeout bounds one call to the target.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxAttempts bounds calls per message (first call included).
	MaxAttempts int `mapstructure:"max_attempts"`
	// Concurrency bounds messages of this route processed at once by one instance.
	Concurrency int     `mapstructure:"concurrency"`
	Backoff     Backoff `mapstructure:"backoff"`
	Cache       Cache   `mapstructure:"cache"`
	// Stub is the native stub answer, used when no stub module is named.
	Stub    *StaticStub  `mapstructure:"stub"`
	Modules RouteModules `mapstructure:"modules"`
	// Deadline bounds a sync call (bw.call.<name>) end to end, retries and
	// fallback included; a caller's Bw-Deadline-Ms may shorten it.
	// Default: timeout × max_attempts, at most 10s.
	Deadline time.Duration `mapstructure:"deadline"`
	// RateLimit limits this route's calls (per instance); nil: unlimited.
	RateLimit *RateLimit `mapstructure:"rate_limit"`
	// Hedge sends a second attempt when the first is slow; nil: off.
	Hedge *Hedge `mapstructure:"hedge"`
	// ReplySubjects widens the subjects a producer may name in Bw-Reply-To
	// (default _INBOX.> and bw.reply.>), as subject patterns.
	ReplySubjects []string `mapstructure:"reply_subjects"`
	// ForwardHeaders lists the producer headers (names or glob patterns,
	// case-insensitive: "X-*", "traceparent") copied to the target's
	// request. Unset: HTTP targets get none (but Content-Type), NATS targets
	// get every header.
	ForwardHeaders []string `mapstructure:"forward_headers"`
	// ResponseHeaders lists the target's response headers (names or glob
	// patterns) put on the outcome and shown to policies (default
	// Content-Type). Nats- and Bw- headers never pass.
	ResponseHeaders []string `mapstructure:"response_headers"`
}

// Breaker configures a target's circuit breaker.
type Breaker struct {
	// FailureThreshold consecutive failures open the breaker (default 5).
	FailureThreshold int `mapstructure:"failure_threshold"`
	// FailureRate (0..1, 0 off) opens it when the share of failures among at
	// least MinRequests calls in Window reaches it.
	FailureRate  float64       `mapstructure:"failure_rate"`
	MinRequests  int           `mapstructure:"min_requests"`
	Window       time.Duration `mapstructure:"window"`
	ResetTimeout time.Duration `mapstructure:"reset_timeout"` // open → half-open (default 30s)
	// HalfOpenProbes bounds concurrent trial calls when half-open (default 1).
	HalfOpenProbes int `mapstructure:"half_open_probes"`
}

// Bulkhead bounds concurrent calls to a target.
type Bulkhead struct {
	MaxConcurrent int           `mapstructure:"max_concurrent"`
	MaxWait       time.Duration `mapstructure:"max_wait"` // wait for a slot before failing fast (default 0)
}

// RateLimit is a token bucket.
type RateLimit struct {
	PerSecond float64       `mapstructure:"per_second"`
	Burst     int           `mapstructure:"burst"`    // default: max(1, per_second)
	MaxWait   time.Duration `mapstructure:"max_wait"` // wait for a token before failing fast (default 0)
}

// Hedge configures hedged requests.
type Hedge struct {
	Delay       time.Duration `mapstructure:"delay"`        // send the next attempt after this long without an answer
	MaxAttempts int           `mapstructure:"max_attempts"` // concurrent attempts in all (default 2)
}

// Target is where a route's calls go: exactly one of HTTP or NATS.
type Target struct {
	// Name identifies the target for breakers, bulkheads and kill switches
	// shared by several routes. Default: the route name.
	Name string      `mapstructure:"name"`
	HTTP *HTTPTarget `mapstructure:"http"`
	NATS *NATSTarget `mapstructure:"nats"`
	// Guards shared by every route calling this target (nil: off).
	Breaker   *Breaker   `mapstructure:"breaker"`
	Bulkhead  *Bulkhead  `mapstructure:"bulkhead"`
	RateLimit *RateLimit `mapstructure:"rate_limit"`
}

// HTTPTarget calls an HTTP endpoint. URL may hold template actions such as
// {{.payload.sku}} rendered per message.
type HTTPTarget struct {
	Method  string            `mapstructure:"method"`
	URL     string            `mapstructure:"url"`
	Headers map[string]string `mapstructure:"headers"`
}

// NATSTarget calls a NATS service by request-reply on Subject.
type NATSTarget struct {
	Subject string `mapstructure:"subject"`
}

// Backoff is the native retry policy: exponential backoff with jitter.
type Backoff struct {
	Initial    time.Duration `mapstructure:"initial"`
	Max        time.Duration `mapstructure:"max"`
	Multiplier float64       `mapstructure:"multiplier"`
	// Jitter is the randomization factor in [0,1]: the delay is drawn from
	// [d*(1-j), d*(1+j)].
	Jitter float64 `mapstructure:"jitter"`
}

// The target strategies of Route.Strategy.
const (
	StrategyFailover     = "failover"
	StrategyRoundRobin   = "round_robin"
	StrategyLeastPending = "least_pending"
)

// Outlier configures outlier ejection, as Envoy does it: a target with
// ConsecutiveFailures failures in a row, or a failure rate of at least
// FailureRate over MinRequests calls within Window, is left out of
// balancing for BaseEjectionTime × the times it was ejected (at most
// MaxEjectionTime). At most MaxEjectedPercent of the route's targets are
// ejected at once, and never the last one. Failures are connection
// errors, timeouts, 5xx and classified retryable answers.
type Outlier struct {
	ConsecutiveFailures int           `mapstructure:"consecutive_failures"`
	FailureRate         float64       `mapstructure:"failure_rate"` // 0..1, 0 off
	MinRequests         int           `mapstructure:"min_requests"`
	Window              time.Duration `mapstructure:"window"`
	BaseEjectionTime    time.Duration `mapstructure:"base_ejection_time"`
	MaxEjectionTime     time.Duration `mapstructure:"max_ejection_time"`
	MaxEjectedPercent   int           `mapstructure:"max_ejected_percent"`
}

// The cache modes of Cache.Mode.
const (
	CacheFallback    = "fallback"
	CacheReadThrough = "read_through"
)

// Cache configures cached answers in KV bw_cache.
type Cache struct {
	// Key is a template over the message ({{.payload.x}}, {{.headers.X}},
	// {{.route}}, {{.subject}}); "" disables caching for the route.
	Key string `mapstructure:"key"`
	// Mode is fallback (the default: a last-known-good value serves only
	// when the target fails) or read_through (a fresh value serves without
	// calling the target; a stale one only when the target fails, within
	// StaleIfError), after RFC 5861.
	Mode string `mapstructure:"mode"`
	// TTL (fallback mode) is how long a stored value may serve as the
	// last-known-good answer.
	TTL time.Duration `mapstructure:"ttl"`
	// Fresh (read_through) is how long a stored value serves without a
	// call to the target.
	Fresh time.Duration `mapstructure:"fresh"`
	// StaleIfError (read_through) is how old a stored value may be and
	// still serve when the target fails (default: TTL).
	StaleIfError time.Duration `mapstructure:"stale_if_error"`
}

// StaticStub is a fixed stand-in answer.
type StaticStub struct {
	Payload string            `mapstructure:"payload"`
	Headers map[string]string `mapstructure:"headers"`
}

// RouteModules names the policy module per decision kind; nil means native.
type RouteModules struct {
	Retry    *ModuleRef `mapstructure:"retry"`
	Fallback *ModuleRef `mapstructure:"fallback"`
	Stub     *ModuleRef `mapstructure:"stub"`
	// Classify judges every answer of the target: success, retryable or
	// permanent failure (native: 2xx is success, other statuses fail).
	Classify *ModuleRef `mapstructure:"classify"`
	// Record is the share (0..1) of the route's module decisions recorded
	// to BW_DECISIONS (nil: decisions.sample).
	Record *float64 `mapstructure:"record"`
}

// RecordSample is the share of the route's decisions recorded.
func (r *Route) RecordSample(c *Config) float64 {
	if r.Modules.Record != nil {
		return *r.Modules.Record
	}
	return c.Decisions.Sample
}

// Kinds lists the kinds the route names a module for, with the refs.
func (m RouteModules) Kinds() map[string]*ModuleRef {
	out := map[string]*ModuleRef{}
	for k, r := range map[string]*ModuleRef{"retry": m.Retry, "fallback": m.Fallback, "stub": m.Stub, "classify": m.Classify} {
		if r != nil {
			out[k] = r
		}
	}
	return out
}

// ModuleRef names a module (and optionally pins a version) with its config.
type ModuleRef struct {
	Name string `mapstructure:"name"`
	// Version pins a version; "" follows the latest.
	Version string `mapstructure:"version"`
	// Config is handed to the module as JSON on every call.
	Config map[string]any `mapstructure:"config"`
	// Limits override the module defaults for this route (zero fields inherit).
	Limits Limits `mapstructure:"limits"`
}
