package subject

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on what the runtime builds from input.
const (
	// MaxToken bounds a route name or any single token taken from input.
	MaxToken = 64
	// MaxReply bounds a reply subject named by a producer.
	MaxReply = 256
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid subject")

// ValidToken reports whether s can stand as one subject token the runtime
// names things after (a route name): 1 to MaxToken letters, digits, '-'
// and '_'.
func ValidToken(s string) bool {
	if s == "" || len(s) > MaxToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			return false
		}
	}
	return true
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// CheckLiteral returns an error (wrapping ErrInvalid) unless s is a literal
// subject of at most maxLen bytes: non-empty dot-separated tokens of
// printable ASCII with no wildcards and no white space.
func CheckLiteral(s string, maxLen int) error {
	return check(s, maxLen, false)
}

// CheckPattern is CheckLiteral for subscription patterns: a token may be
// the wildcard '*', and the last token may be '>'.
func CheckPattern(s string, maxLen int) error {
	return check(s, maxLen, true)
}

func check(s string, maxLen int, pattern bool) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: %d bytes long, more than the %d allowed", ErrInvalid, len(s), maxLen)
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		if t == "" {
			return fmt.Errorf("%w: %q has an empty token", ErrInvalid, s)
		}
		if pattern && (t == "*" || t == ">" && i == len(tokens)-1) {
			continue
		}
		for j := 0; j < len(t); j++ {
			c := t[j]
			if c <= ' ' || c >= 0x7f {
				return fmt.Errorf("%w: %q holds white space, a control or non-ASCII byte", ErrInvalid, s)
			}
			if c == '*' || c == '>' {
				return fmt.Errorf("%w: %q holds a wildcard (%q); a literal subject is needed", ErrInvalid, s, c)
			}
		}
	}
	return nil
}

// Match reports whether the literal subject s matches pattern (NATS
// wildcards: '*' one token, a final '>' one or more tokens).
func Match(pattern, s string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(s, ".")
	for i, p := range pt {
		if p == ">" && i == len(pt)-1 {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

// Overlaps reports whether some literal subject could match both patterns.
func Overlaps(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		aEnd, bEnd := i >= len(at), i >= len(bt)
		switch {
		case aEnd && bEnd:
			return true
		case !aEnd && at[i] == ">":
			return !bEnd
		case !bEnd && bt[i] == ">":
			return !aEnd
		case aEnd || bEnd:
			return false
		case at[i] != "*" && bt[i] != "*" && at[i] != bt[i]:
			return false
		}
	}
}

// ReplyError is a producer-named reply subject the runtime refuses.
type ReplyError struct {
	Subject string // as named, cut to MaxReply bytes
	Reason  string
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("reply subject %q refused: %s", e.Subject, e.Reason)
}

func (e *ReplyError) Unwrap() error { return ErrInvalid }

// CheckReply returns a *ReplyError unless s is a literal subject of at most
// MaxReply bytes matching one of allowed.
func CheckReply(s string, allowed []string) error {
	shown := s
	if len(shown) > MaxReply {
		shown = shown[:MaxReply] + "…"
	}
	if err := CheckLiteral(s, MaxReply); err != nil {
		return &ReplyError{Subject: shown, Reason: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}
	}
	for _, p := range allowed {
		if Match(p, s) {
			return nil
		}
	}
	return &ReplyError{Subject: shown, Reason: fmt.Sprintf("outside the allowed reply namespaces %v (a route's reply_subjects can widen them)", allowed)}
}
