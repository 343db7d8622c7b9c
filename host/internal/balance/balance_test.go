package balance_test

import (
	"slices"
	"testing"
	"time"

	"github.com/breakwater-dev/breakwater/host/internal/balance"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestOrder(t *testing.T) {
	tests := []struct {
		name     string
		strategy balance.Strategy
		want     [][]int // successive orders
	}{
		{"failover keeps configured order", balance.Failover, [][]int{{0, 1, 2}, {0, 1, 2}}},
		{"round robin starts at the next target", balance.RoundRobin, [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := balance.New(3, balance.Options{Strategy: tt.strategy})
			for i, want := range tt.want {
				if got := s.Order(); !slices.Equal(got, want) {
					t.Fatalf("order %d: %v; want %v", i, got, want)
				}
			}
		})
	}
}

func TestLeastPending(t *testing.T) {
	s := balance.New(3, balance.Options{Strategy: balance.LeastPending})
	end0 := s.Begin(0)
	end0b := s.Begin(0)
	end1 := s.Begin(1)
	if got := s.Order(); got[0] != 2 || got[2] != 0 {
		t.Fatalf("order %v; want target 2 (none pending) first and target 0 (two) last", got)
	}
	end0()
	end0b()
	end1()
	firsts := map[int]int{}
	for range 30 {
		firsts[s.Order()[0]]++
	}
	if len(firsts) != 3 {
		t.Fatalf("with nothing pending, ties should rotate: firsts %v", firsts)
	}
}

func TestOutlierEjection(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var events []balance.Ejection
	o := &balance.Outlier{ConsecutiveFailures: 3, MinRequests: 10, Window: 10 * time.Second, BaseEjectionTime: 30 * time.Second,
		MaxEjectionTime: 50 * time.Second, MaxEjectedPercent: 50}
	s := balance.New(2, balance.Options{Outlier: o, Now: c.now, OnEjection: func(e balance.Ejection) { events = append(events, e) }})

	s.Report(0, true)
	s.Report(0, true)
	s.Report(0, false) // a success resets the count
	s.Report(0, true)
	s.Report(0, true)
	if s.Ejected(0) {
		t.Fatal("ejected after 2 consecutive failures; want 3")
	}
	s.Report(0, true)
	if !s.Ejected(0) || !slices.Equal(s.Order(), []int{1, 0}) {
		t.Fatalf("after 3 consecutive failures: ejected %v, order %v; want ejected and tried last", s.Ejected(0), s.Order())
	}
	// Never the last target (and at most 50 % of 2): target 1 stays in.
	for range 5 {
		s.Report(1, true)
	}
	if s.Ejected(1) {
		t.Fatal("the last target in balancing was ejected")
	}
	// Back after the base time, and ejected for longer the second time.
	c.t = c.t.Add(31 * time.Second)
	if s.Ejected(0) {
		t.Fatal("still ejected after the ejection time")
	}
	for range 3 {
		s.Report(0, true)
	}
	c.t = c.t.Add(40 * time.Second)
	if !s.Ejected(0) {
		t.Fatal("the second ejection should last 2 × 30s (capped at 50s)")
	}
	c.t = c.t.Add(11 * time.Second)
	if s.Ejected(0) {
		t.Fatal("the ejection is capped at max_ejection_time")
	}
	want := []balance.Ejection{{Target: 0, Ejected: true, For: 30 * time.Second, Reason: "consecutive failures"}, {Target: 0, Reason: "ejection time over"},
		{Target: 0, Ejected: true, For: 50 * time.Second, Reason: "consecutive failures"}, {Target: 0, Reason: "ejection time over"}}
	if !slices.Equal(events, want) {
		t.Fatalf("events %+v\nwant %+v", events, want)
	}
}

func TestOutlierFailureRate(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	o := &balance.Outlier{ConsecutiveFailures: 100, FailureRate: 0.5, MinRequests: 4, Window: 10 * time.Second,
		BaseEjectionTime: 30 * time.Second, MaxEjectionTime: time.Minute, MaxEjectedPercent: 100}
	s := balance.New(3, balance.Options{Outlier: o, Now: c.now})
	for _, failed := range []bool{true, false, true} {
		s.Report(2, failed)
	}
	if s.Ejected(2) {
		t.Fatal("ejected before min_requests calls")
	}
	s.Report(2, false) // 2 of 4: the rate is reached on the next failure only
	if s.Ejected(2) {
		t.Fatal("ejected on a success")
	}
	s.Report(2, true)
	if !s.Ejected(2) {
		t.Fatal("3 failures of 5 calls (60 %) should eject at a 50 % rate")
	}
	// A window that ends forgets its calls.
	c.t = c.t.Add(time.Minute)
	for _, failed := range []bool{true, false, false, false} {
		s.Report(1, failed)
	}
	c.t = c.t.Add(11 * time.Second)
	for _, failed := range []bool{true, true, false} {
		s.Report(1, failed)
	}
	if s.Ejected(1) {
		t.Fatal("calls of an ended window counted")
	}
}
