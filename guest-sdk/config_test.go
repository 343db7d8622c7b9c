package guest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/guest-sdk"
)

type backoff struct {
	InitialMs int64   `json:"initial_ms"`
	Factor    float64 `json:"factor"`
}

func TestConfigLoad(t *testing.T) {
	c := guest.Config[backoff]{
		Defaults: backoff{InitialMs: 100, Factor: 2},
		Validate: func(b *backoff) error {
			if b.InitialMs <= 0 {
				return errors.New("initial_ms must be > 0")
			}
			return nil
		},
	}
	tests := []struct {
		name    string
		raw     string
		want    backoff
		wantErr string
	}{
		{"empty: defaults", "", backoff{100, 2}, ""},
		{"null: defaults", "null", backoff{100, 2}, ""},
		{"partial: defaults kept", `{"factor": 3}`, backoff{100, 3}, ""},
		{"full", `{"initial_ms": 5, "factor": 1.5}`, backoff{5, 1.5}, ""},
		{"unknown keys ignored", `{"initial_ms": 5, "other": true}`, backoff{5, 2}, ""},
		{"bad JSON", `{"initial_ms":`, backoff{}, "decoding module config"},
		{"wrong type", `{"initial_ms": "soon"}`, backoff{}, "decoding module config"},
		{"invalid", `{"initial_ms": -1}`, backoff{}, "invalid module config: initial_ms must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Load([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%q) error = %v, want one containing %q", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil || *got != tt.want {
				t.Fatalf("Load(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestConfigCaches(t *testing.T) {
	decodes := 0
	c := guest.Config[backoff]{Validate: func(*backoff) error { decodes++; return nil }}
	a1, _ := c.Load([]byte(`{"initial_ms": 1}`))
	a2, _ := c.Load([]byte(`{"initial_ms": 1}`))
	b1, _ := c.Load([]byte(`{"initial_ms": 2}`))
	if a1 != a2 || decodes != 2 || a1 == b1 || b1.InitialMs != 2 {
		t.Errorf("same bytes should share one decoded value: a1=%p a2=%p b1=%p decodes=%d", a1, a2, b1, decodes)
	}
	// Past the bound the cache starts over; values stay correct.
	for i := range 40 {
		v, err := c.Load(fmt.Appendf(nil, `{"initial_ms": %d}`, i+10))
		if err != nil || v.InitialMs != int64(i+10) {
			t.Fatalf("Load #%d = %+v, %v", i, v, err)
		}
	}
	if v, _ := c.Load([]byte(`{"initial_ms": 1}`)); v.InitialMs != 1 {
		t.Errorf("after eviction: %+v", v)
	}
}

func TestConfigMustLoadPanics(t *testing.T) {
	var c guest.Config[backoff]
	defer func() {
		if r := recover(); r == nil {
			t.Error("MustLoad of bad JSON did not panic")
		}
	}()
	c.MustLoad([]byte("{"))
}

// ExampleConfig decodes a route's config once and reuses it on later calls.
func ExampleConfig() {
	type settings struct {
		DelayMs int64 `json:"delay_ms"`
		Jitter  bool  `json:"jitter"`
	}
	config := guest.Config[settings]{Defaults: settings{DelayMs: 200}}

	in := &guest.Input{Route: "orders", Config: []byte(`{"jitter": true}`)}
	s := config.MustLoad(in.Config) // decoded on the first call, cached after
	fmt.Printf("delay %d ms, jitter %v\n", s.DelayMs, s.Jitter)
	// Output: delay 200 ms, jitter true
}
