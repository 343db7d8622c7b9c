package target

import (
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// HeaderFilter says which header names pass: names or glob patterns
// (path.Match syntax: "X-*", "traceparent"), matched case-insensitively.
// A nil filter passes nothing; AllHeaders passes everything.
type HeaderFilter struct {
	all      bool
	patterns []string // lower case
}

// AllHeaders passes every header.
var AllHeaders = &HeaderFilter{all: true}

// NewHeaderFilter returns a filter passing the names matching patterns (nil
// for none). A pattern path.Match cannot parse is an error naming it.
func NewHeaderFilter(patterns []string) (*HeaderFilter, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	f := &HeaderFilter{}
	for _, p := range patterns {
		lp := strings.ToLower(p)
		if _, err := path.Match(lp, ""); err != nil {
			return nil, &PatternError{Pattern: p, Err: err}
		}
		if lp == "*" {
			f.all = true
		}
		f.patterns = append(f.patterns, lp)
	}
	return f, nil
}

// PatternError is a header pattern that is not a valid glob.
type PatternError struct {
	Pattern string
	Err     error
}

func (e *PatternError) Error() string {
	return "header pattern " + strconv.Quote(e.Pattern) + ": " + e.Err.Error()
}
func (e *PatternError) Unwrap() error { return e.Err }

// Pass reports whether name passes the filter. Nats- and Bw- headers
// (the runtime's) and the trace context (the runtime writes its own) never
// pass.
func (f *HeaderFilter) Pass(name string) bool {
	if f == nil || headers.Reserved(name) || strings.EqualFold(name, "traceparent") || strings.EqualFold(name, "tracestate") {
		return false
	}
	if f.all {
		return true
	}
	ln := strings.ToLower(name)
	for _, p := range f.patterns {
		if ok, _ := path.Match(p, ln); ok {
			return true
		}
	}
	return false
}

// Select returns the first value of every header of h passing f (nil when
// none does).
func (f *HeaderFilter) Select(h map[string][]string) map[string]string {
	var out map[string]string
	for k, v := range h {
		if len(v) > 0 && f.Pass(k) {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = v[0]
		}
	}
	return out
}

// RetryAfter parses a Retry-After value, seconds or an HTTP date, into a
// wait from now (0 when absent, unparsable or in the past).
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
