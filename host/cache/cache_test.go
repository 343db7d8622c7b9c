package cache

import "testing"

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
