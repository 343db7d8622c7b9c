package guest

import (
	"encoding/json"
	"fmt"
)

// maxCachedConfigs bounds a Config's cache. An instance serves one module
// version, usually for one route, so a handful of configs is plenty; past the
// bound the cache starts over.
const maxCachedConfigs = 16

// Config decodes a route's JSON config (Input.Config) into a T, and caches
// the result: the host sends the same config bytes on every call of a route,
// so decoding once per instance instead of once per call saves most of a
// policy's time. The zero value is ready to use; keep one in a package
// variable.
//
// Defaults: Load starts from a copy of Defaults before decoding, so fields
// the config leaves out keep their default values.
//
//	type settings struct {
//		InitialMs int64 `json:"initial_ms"`
//	}
//
//	var config = guest.Config[settings]{Defaults: settings{InitialMs: 100}}
//
//	func decide(in *guest.Input) guest.RetryDecision {
//		s, err := config.Load(in.Config)
//		if err != nil {
//			panic(err) // a trap: the host applies the route's native policy
//		}
//		...
//	}
//
// Like a module instance, a Config is not safe for concurrent use.
type Config[T any] struct {
	// Defaults is the value a config is decoded on top of. An empty or
	// absent config ("" or "null") yields Defaults. It is copied shallowly:
	// keep maps and pointers out of it, or the decoding would write through
	// them.
	Defaults T
	// Validate, if set, checks a decoded value; its error is returned by
	// Load (and the value is not cached).
	Validate func(*T) error

	cache map[string]configEntry[T]
	// last is the entry of the last Load: most calls repeat it, and
	// comparing bytes is cheaper than hashing them.
	last configEntry[T]
}

type configEntry[T any] struct {
	raw string
	v   *T
}

// Load returns the value decoded from raw, from the cache when raw was seen
// before. The returned pointer is shared by every call with the same raw
// bytes: treat it as read-only. Errors say what is wrong with the JSON.
func (c *Config[T]) Load(raw []byte) (*T, error) {
	if c.last.v != nil && string(raw) == c.last.raw {
		return c.last.v, nil
	}
	if e, ok := c.cache[string(raw)]; ok {
		c.last = e
		return e.v, nil
	}
	v := new(T)
	*v = c.Defaults
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("decoding module config: %w", err)
		}
	}
	if c.Validate != nil {
		if err := c.Validate(v); err != nil {
			return nil, fmt.Errorf("invalid module config: %w", err)
		}
	}
	if c.cache == nil || len(c.cache) >= maxCachedConfigs {
		c.cache = make(map[string]configEntry[T])
	}
	e := configEntry[T]{raw: string(raw), v: v}
	c.cache[e.raw] = e
	c.last = e
	return v, nil
}

// MustLoad is like Load but panics on error. Inside a module the panic traps
// the call, which the host counts as a breach (it applies the route's native
// policy, and quarantines a module that keeps breaching): the right outcome
// for a config that cannot be read, which the host's dry run at upload
// should have caught.
func (c *Config[T]) MustLoad(raw []byte) *T {
	v, err := c.Load(raw)
	if err != nil {
		panic(err)
	}
	return v
}
