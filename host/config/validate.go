package config

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"path"
	"strings"
	"text/template"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/internal/subject"
)

// FieldError is a validation failure of one configuration field.
type FieldError struct {
	Field  string // dotted path, e.g. routes[2].target.http.url
	Reason string // what is wrong and what to do
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Field, e.Reason) }

// maxAttempts bounds max_attempts and streams.internal_retries.
const maxAttempts = 10000

// reservedSubjects are namespaces a route's reply_subjects may not reach.
func reservedSubjects(inboxPrefix string) []string {
	return []string{"$JS.>", "$KV.>", "$O.>", "$SYS.>", "$JSC.>", "$NRG.>", "bw.in.>", "bw.out.>", "bw.dlq.>", "bw.dlqdata.>", "bw.call.>", inboxPrefix + ".>"}
}

// Validate checks the configuration; it returns every problem found, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := subject.CheckLiteral(c.NATS.InboxPrefix, 64); err != nil {
		bad("nats.inbox_prefix", "%v", err)
	} else {
		for _, ns := range []string{"_INBOX.>", "bw.>", "$JS.>", "$KV.>", "$O.>", "$SYS.>"} {
			if subject.Overlaps(ns, c.NATS.InboxPrefix+".>") {
				bad("nats.inbox_prefix", "%q overlaps %s (producers' replies, the runtime's subjects or the server's): pick a prefix of the runtime's own (default _BW_INBOX)", c.NATS.InboxPrefix, ns)
				break
			}
		}
	}
	if c.NATS.ConnectTimeout <= 0 {
		bad("nats.connect_timeout", "must be positive (how long start-up waits for the NATS server)")
	}
	for name, cr := range map[string]Credentials{"nats.worker": c.NATS.Worker, "nats.replies": c.NATS.Replies} {
		if (cr.User == "") != (cr.Password == "") {
			bad(name, "set both user and password, or neither")
		}
		if cr.User != "" && c.NATS.URL == "" {
			bad(name, "only for an external server (nats.url): the embedded server makes the runtime's identities itself")
		}
	}
	if c.NATS.URL != "" {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err != nil || pu.Host == "" {
				bad("nats.url", "%q is not a NATS URL (want nats://host:port[,nats://...])", u)
			}
		}
	} else {
		if c.NATS.Embedded.Port < -1 || c.NATS.Embedded.Port > 65535 {
			bad("nats.embedded.port", "%d is not a port (0..65535, or -1 for a random one)", c.NATS.Embedded.Port)
		}
		admin := false
		users := map[string]bool{}
		for i, u := range c.NATS.Embedded.Users {
			f := fmt.Sprintf("nats.embedded.users[%d]", i)
			if u.User == "" || u.Password == "" {
				bad(f, "user and password are required")
			} else if !subject.ValidToken(u.User) || strings.HasPrefix(u.User, "_") {
				bad(f+".user", "%q may hold only letters, digits, '-' and '_', not start with '_', and be at most %d long (it names the user's inbox prefix _INBOX.<user>)", u.User, subject.MaxToken)
			} else if users[u.User] {
				bad(f+".user", "%q is listed twice", u.User)
			}
			users[u.User] = true
			switch u.Role {
			case "admin":
				admin = admin || (u.User == c.NATS.User && u.Password == c.NATS.Password)
				if len(u.Routes) > 0 {
					bad(f+".routes", "only producers are limited to routes; an admin may do everything")
				}
			case "producer":
				for j, r := range u.Routes {
					if c.Route(r) == nil && !c.noRoutesOK {
						bad(fmt.Sprintf("%s.routes[%d]", f, j), "no route is named %q", r)
					}
				}
			default:
				bad(f+".role", "%q is not admin or producer", u.Role)
			}
		}
		if len(c.NATS.Embedded.Users) > 0 && !admin {
			bad("nats.user", "with nats.embedded.users set, nats.user and nats.password must be those of an admin user (the identity operator commands use)")
		}
		if net.ParseIP(c.NATS.Embedded.Host) == nil && c.NATS.Embedded.Host != "localhost" {
			bad("nats.embedded.host", "%q is not an IP address", c.NATS.Embedded.Host)
		}
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "%q is not host:port (%v); use \"\" to disable", c.HTTP.Listen, err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	if c.Streams.Replicas < 1 || c.Streams.Replicas > 5 {
		bad("streams.replicas", "%d is out of range 1..5", c.Streams.Replicas)
	}
	if c.Streams.AckWait <= 0 {
		bad("streams.ack_wait", "must be positive")
	}
	if c.Streams.DuplicateWindow <= c.Streams.AckWait {
		bad("streams.duplicate_window", "%v must exceed streams.ack_wait (%v) so a crash between publishing an outcome and acking is detected", c.Streams.DuplicateWindow, c.Streams.AckWait)
	}
	if c.Streams.OutMaxAge < 0 {
		bad("streams.out_max_age", "%v is negative: use a positive age, or 0 to keep outcomes forever", c.Streams.OutMaxAge)
	}
	if c.Streams.DLQMaxAge < 0 {
		bad("streams.dlq_max_age", "%v is negative: use a positive age, or 0 to keep dead letters forever", c.Streams.DLQMaxAge)
	}
	if c.Streams.BrokerTimeout <= 0 {
		bad("streams.broker_timeout", "must be positive (how long a publish ack or a KV call may take)")
	}
	if c.Streams.InternalRetries < 1 || c.Streams.InternalRetries > maxAttempts {
		bad("streams.internal_retries", "%d is out of range 1..%d (redeliveries allowed after internal failures)", c.Streams.InternalRetries, maxAttempts)
	}
	if c.Streams.InternalRetryDelay <= 0 {
		bad("streams.internal_retry_delay", "must be positive")
	}
	if c.Streams.PublishMaxPending < 1 {
		bad("streams.publish_max_pending", "must be at least 1")
	}
	if c.Modules.PoolSize < 1 {
		bad("modules.pool_size", "must be at least 1")
	}
	if c.Modules.Canary.Window < time.Second {
		bad("modules.canary.window", "%v is too short: at least 1s (the window over which a canary's breach and error rates are compared)", c.Modules.Canary.Window)
	}
	if c.Modules.Canary.Margin <= 0 || c.Modules.Canary.Margin >= 1 {
		bad("modules.canary.margin", "%v is out of range: more than 0 and less than 1 (0.05 = 5 percentage points)", c.Modules.Canary.Margin)
	}
	if c.Modules.Canary.MinCalls < 1 {
		bad("modules.canary.min_calls", "must be at least 1")
	}
	if c.Decisions.MaxAge <= 0 {
		bad("decisions.max_age", "must be positive (how long decision records are kept)")
	}
	if c.Decisions.MaxBytes < 1<<20 {
		bad("decisions.max_bytes", "%d is under 1 MiB (1048576): the stream would hold almost nothing", c.Decisions.MaxBytes)
	}
	if c.Decisions.Sample < 0 || c.Decisions.Sample > 1 {
		bad("decisions.sample", "%v is out of range 0..1 (0.01 records 1%% of decisions)", c.Decisions.Sample)
	}
	for i, k := range c.Modules.TrustedKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			bad(fmt.Sprintf("modules.trusted_keys[%d]", i), "%.20q is not an nkey user public key (U…, as printed by `runtime module keygen`)", k)
		}
	}
	checkLimits := func(f string, l Limits, inherit bool) {
		if l.Fuel == 0 && !inherit {
			bad(f+".fuel", "must be positive (instructions a call may run; default 50000000)")
		}
		if l.WallTime < 0 || l.WallTime == 0 && !inherit {
			bad(f+".wall_time", "%v: must be positive (default 50ms)", l.WallTime)
		}
		if l.MemoryPages == 0 && !inherit || l.MemoryPages > 65536 {
			bad(f+".memory_pages", "%d: must be 1..65536 (64 KiB pages; default 512)", l.MemoryPages)
		}
		if l.OutputBytes == 0 && !inherit {
			bad(f+".output_bytes", "must be positive (default 65536)")
		}
	}
	checkLimits("modules.limits", c.Modules.Limits, false)
	if len(c.Routes) == 0 && !c.noRoutesOK {
		bad("routes", "no routes configured: add at least one route (see examples/quickstart/breakwater.yaml)")
	}
	seen := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		f := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			bad(f+".name", "missing: every route needs a name (one subject token)")
		} else if !subject.ValidToken(r.Name) || strings.HasPrefix(r.Name, "_") {
			bad(f+".name", "%q may hold only letters, digits, '-' and '_', must not start with '_' (reserved), and be at most %d long (it becomes a subject token of bw.in.<name>)", r.Name, subject.MaxToken)
		} else if j, dup := seen[r.Name]; dup {
			bad(f+".name", "%q is already the name of routes[%d]", r.Name, j)
		} else {
			seen[r.Name] = i
		}
		switch {
		case r.bothTargets:
			bad(f+".targets", "the route sets both target and targets: keep target for one target, or move it into targets")
		case len(r.Targets) == 0 && r.Targets != nil:
			bad(f+".targets", "empty: list at least one target (name, and http or nats)")
		case len(r.Targets) == 0:
			bad(f+".target", "missing: set target.http (method, url) or target.nats (subject), or a list of targets")
		}
		targetNames := map[string]int{}
		for ti := range r.Targets {
			t := &r.Targets[ti]
			tf := fmt.Sprintf("%s.targets[%d]", f, ti)
			if r.singleTarget {
				tf = f + ".target"
			}
			c.validateTarget(tf, t, bad)
			if !r.singleTarget && t.Name == "" {
				bad(tf+".name", "missing: every entry of targets needs a name (it names the target in outcomes, metrics and the flag target.<name>.enabled)")
			} else if tj, dup := targetNames[t.Name]; dup && t.Name != "" {
				bad(tf+".name", "%q is already the name of %s.targets[%d]: target names must be distinct within a route", t.Name, f, tj)
			} else {
				targetNames[t.Name] = ti
			}
		}
		switch r.Strategy {
		case StrategyFailover, StrategyRoundRobin, StrategyLeastPending:
		default:
			bad(f+".strategy", "%q is not one of failover, round_robin, least_pending", r.Strategy)
		}
		if o := r.Outlier; o != nil {
			if o.ConsecutiveFailures < 1 {
				bad(f+".outlier.consecutive_failures", "must be at least 1")
			}
			if o.FailureRate < 0 || o.FailureRate > 1 {
				bad(f+".outlier.failure_rate", "%v is out of range 0..1 (0: off)", o.FailureRate)
			}
			if o.MinRequests < 1 || o.Window <= 0 || o.BaseEjectionTime <= 0 || o.MaxEjectionTime < o.BaseEjectionTime {
				bad(f+".outlier", "min_requests must be at least 1, window and base_ejection_time positive, and max_ejection_time at least base_ejection_time")
			}
			if o.MaxEjectedPercent < 1 || o.MaxEjectedPercent > 100 {
				bad(f+".outlier.max_ejected_percent", "%d is out of range 1..100", o.MaxEjectedPercent)
			}
		}
		if r.Stub != nil {
			for k := range r.Stub.Headers {
				if !headers.Token(k) {
					bad(f+".stub.headers", "%q is not a valid header name (no white space, ':' or non-ASCII)", k)
				} else if headers.Reserved(k) {
					k = textproto.CanonicalMIMEHeaderKey(k)
					bad(f+".stub.headers", "%q is in the Nats- or Bw- header namespace, which belongs to the runtime: rename it (for example X-%s)", k, k)
				}
			}
		}
		for key, patterns := range map[string][]string{"forward_headers": r.ForwardHeaders, "response_headers": r.ResponseHeaders} {
			for j, p := range patterns {
				if _, err := path.Match(strings.ToLower(p), ""); err != nil || p == "" {
					bad(fmt.Sprintf("%s.%s[%d]", f, key, j), "%q is not a header name or glob pattern (like X-* or traceparent)", p)
				}
			}
		}
		for j, p := range r.ReplySubjects {
			ff := fmt.Sprintf("%s.reply_subjects[%d]", f, j)
			if err := subject.CheckPattern(p, subject.MaxReply); err != nil {
				bad(ff, "%v", err)
				continue
			}
			for _, reserved := range reservedSubjects(c.NATS.InboxPrefix) {
				if subject.Overlaps(p, reserved) {
					bad(ff, "%q overlaps %s, which belongs to NATS or the runtime: name a namespace of your own", p, reserved)
					break
				}
			}
		}
		if r.Timeout < 0 {
			bad(f+".timeout", "must be positive")

		} else if r.Timeout >= c.Streams.AckWait {
			bad(f+".timeout", "%v must be shorter than streams.ack_wait (%v), or JetStream redelivers messages still being worked on", r.Timeout, c.Streams.AckWait)
		}
		if r.MaxAttempts < 1 || r.MaxAttempts > maxAttempts {
			bad(f+".max_attempts", "%d is out of range 1..%d", r.MaxAttempts, maxAttempts)
		}
		if r.Concurrency < 1 {
			bad(f+".concurrency", "must be at least 1")
		}
		b := r.Backoff
		if b.Initial <= 0 || b.Max < b.Initial {
			bad(f+".backoff", "initial (%v) must be positive and max (%v) at least initial", b.Initial, b.Max)
		}
		if b.Multiplier < 1 {
			bad(f+".backoff.multiplier", "%v must be at least 1", b.Multiplier)
		}
		if b.Jitter < 0 || b.Jitter > 1 {
			bad(f+".backoff.jitter", "%v is out of range 0..1", b.Jitter)
		}
		if r.Cache.Key != "" {
			if _, err := template.New("key").Parse(r.Cache.Key); err != nil {
				bad(f+".cache.key", "template: %v", err)
			}
			if r.Cache.TTL < 0 {
				bad(f+".cache.ttl", "must be positive")
			}
			switch r.Cache.Mode {
			case CacheFallback:
				if r.Cache.Fresh != 0 {
					bad(f+".cache.fresh", "only for mode read_through (in mode fallback a cached value serves only when the target fails)")
				}
			case CacheReadThrough:
				if r.Cache.Fresh <= 0 {
					bad(f+".cache.fresh", "%v: must be positive in mode read_through (how long a cached value serves without calling the target)", r.Cache.Fresh)
				}
				if r.Cache.StaleIfError < r.Cache.Fresh {
					bad(f+".cache.stale_if_error", "%v must be at least fresh (%v)", r.Cache.StaleIfError, r.Cache.Fresh)
				}
			default:
				bad(f+".cache.mode", "%q is not fallback or read_through", r.Cache.Mode)
			}
		} else if r.Cache != (Cache{}) {
			bad(f+".cache.key", "missing: cache settings need a key template (for example '{{.payload.sku}}')")
		}
		if r.Deadline < 0 {
			bad(f+".deadline", "must be positive")
		}
		if rl := r.RateLimit; rl != nil && (rl.PerSecond <= 0 || rl.Burst < 1 || rl.MaxWait < 0) {
			bad(f+".rate_limit", "per_second must be positive, burst at least 1, max_wait not negative")
		}
		if h := r.Hedge; h != nil && (h.Delay <= 0 || h.MaxAttempts < 2 || h.MaxAttempts > 5) {
			bad(f+".hedge", "delay must be positive and max_attempts 2..5")
		}
		for kind, m := range r.Modules.Kinds() {
			if m.Name == "" {
				bad(f+".modules."+kind+".name", "missing: name the module (see `runtime module list`)")
			}
			checkLimits(f+".modules."+kind+".limits", m.Limits, true)
		}
		if rec := r.Modules.Record; rec != nil && (*rec < 0 || *rec > 1) {
			bad(f+".modules.record", "%v is out of range 0..1 (the share of the route's module decisions recorded; 0.01 = 1%%)", *rec)
		}
	}
	return errors.Join(errs...)
}

// validateTarget checks one target of a route; f is its field path.
func (c *Config) validateTarget(f string, t *Target, bad func(field, format string, args ...any)) {
	switch {
	case t.HTTP == nil && t.NATS == nil:
		bad(f, "missing http or nats: set http (method, url) or nats (subject)")
	case t.HTTP != nil && t.NATS != nil:
		bad(f, "set only one of http and nats")
	case t.HTTP != nil:
		h := t.HTTP
		if h.URL == "" {
			bad(f+".http.url", "missing")
		} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			bad(f+".http.url", "%q is not an http(s) URL", h.URL)
		} else if _, err := template.New("url").Parse(h.URL); err != nil {
			bad(f+".http.url", "template: %v", err)
		}
		switch h.Method {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			bad(f+".http.method", "%q is not one of GET, POST, PUT, PATCH, DELETE", h.Method)
		}
	case t.NATS != nil:
		if t.NATS.Subject == "" || strings.ContainsAny(t.NATS.Subject, " *>") {
			bad(f+".nats.subject", "%q is not a literal NATS subject", t.NATS.Subject)
		}
	}
	if t.Name != "" && !subject.ValidToken(t.Name) {
		bad(f+".name", "%q may hold only letters, digits, '-' and '_' (at most %d)", t.Name, subject.MaxToken)
	}
	if b := t.Breaker; b != nil {
		if b.FailureThreshold < 1 {
			bad(f+".breaker.failure_threshold", "must be at least 1")
		}
		if b.FailureRate < 0 || b.FailureRate > 1 {
			bad(f+".breaker.failure_rate", "%v is out of range 0..1", b.FailureRate)
		}
		if b.ResetTimeout <= 0 || b.Window <= 0 || b.HalfOpenProbes < 1 || b.MinRequests < 1 {
			bad(f+".breaker", "reset_timeout and window must be positive, half_open_probes and min_requests at least 1")
		}
	}
	if b := t.Bulkhead; b != nil && (b.MaxConcurrent < 1 || b.MaxWait < 0) {
		bad(f+".bulkhead", "max_concurrent must be at least 1 and max_wait not negative")
	}
	if rl := t.RateLimit; rl != nil && (rl.PerSecond <= 0 || rl.Burst < 1 || rl.MaxWait < 0) {
		bad(f+".rate_limit", "per_second must be positive, burst at least 1, max_wait not negative")
	}
}

// Route returns the route named name, or nil.
func (c *Config) Route(name string) *Route {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i]
		}
	}
	return nil
}
