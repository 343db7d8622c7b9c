package cache

import (
	"regexp"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	tests := []struct{ route, key, want string }{
		{"quotes", "A1", "quotes.A1"},
		{"quotes", "a.b c", "quotes.a=2Eb=20c"},
		{"quotes", "x=y", "quotes.x=3Dy"},
		{"quotes", "ü", "quotes.=C3=BC"},
	}
	for _, tt := range tests {
		if got := Key(tt.route, tt.key); got != tt.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tt.route, tt.key, got, tt.want)
		}
	}
}

// TestKeyBoundedAndUnique: keys from untrusted payloads never make a KV
// key (a subject) too long, and stay distinct from each other.
func TestKeyBoundedAndUnique(t *testing.T) {
	long := strings.Repeat("k", 5000)
	keys := []string{
		long, long + "x", strings.Repeat("é", 2000), strings.Repeat("k", MaxEscapedKey), strings.Repeat("k", MaxEscapedKey+1),
		"==", "=3D=3D", strings.Repeat("=", 60),
	}
	seen := map[string]string{}
	kvKey := regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)
	for _, k := range keys {
		got := Key("quotes", k)
		if len(got) > len("quotes.")+MaxEscapedKey+2 {
			t.Errorf("Key(%.20q…) is %d bytes long", k, len(got))
		}
		if !kvKey.MatchString(got) {
			t.Errorf("Key(%.20q…) = %q is not a valid KV key", k, got)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("keys %.20q and %.20q both map to %q", k, other, got)
		}
		seen[got] = k
	}
}
