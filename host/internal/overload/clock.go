package overload

import "time"

// Clock is the time source of the breaker; tests substitute a fake.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
