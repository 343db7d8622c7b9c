package overload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrFull matches (errors.Is) every *FullError.
var ErrFull = errors.New("bulkhead full")

// FullError is a call refused because the bulkhead stayed full.
type FullError struct {
	Name    string
	Max     int
	Waited  time.Duration
	Context error // set when the caller's context ended first
}

func (e *FullError) Error() string {
	return fmt.Sprintf("bulkhead of %q is full (%d calls in flight; waited %v): call not made", e.Name, e.Max, e.Waited.Round(time.Millisecond))
}

func (e *FullError) Is(target error) bool { return target == ErrFull }

// Bulkhead bounds concurrent calls to a target: at most Max at once; a call
// waits at most MaxWait for a slot, then fails fast.
type Bulkhead struct {
	name    string
	slots   chan struct{}
	maxWait time.Duration
}

// NewBulkhead returns a bulkhead of max slots.
func NewBulkhead(name string, max int, maxWait time.Duration) *Bulkhead {
	return &Bulkhead{name: name, slots: make(chan struct{}, max), maxWait: maxWait}
}

// Acquire takes a slot, waiting at most MaxWait (and never past ctx). The
// returned release frees it; calling release more than once is harmless.
func (b *Bulkhead) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case b.slots <- struct{}{}:
		return b.releaser(), nil
	default:
	}
	t0 := time.Now()
	if b.maxWait <= 0 {
		return nil, &FullError{Name: b.name, Max: cap(b.slots)}
	}
	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	select {
	case b.slots <- struct{}{}:
		return b.releaser(), nil
	case <-timer.C:
		return nil, &FullError{Name: b.name, Max: cap(b.slots), Waited: time.Since(t0)}
	case <-ctx.Done():
		return nil, &FullError{Name: b.name, Max: cap(b.slots), Waited: time.Since(t0), Context: ctx.Err()}
	}
}

func (b *Bulkhead) releaser() func() {
	var once sync.Once
	return func() { once.Do(func() { <-b.slots }) }
}

// InFlight is the number of slots taken.
func (b *Bulkhead) InFlight() int { return len(b.slots) }

// Max is the number of slots.
func (b *Bulkhead) Max() int { return cap(b.slots) }
