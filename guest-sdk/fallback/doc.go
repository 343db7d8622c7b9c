// Package fallback makes a module a fallback policy: importing it adds the
// bw_fallback export (ABI v1) to the module, and Handle registers the
// function it runs.
//
// The host calls bw_fallback once retries are over (or when no attempt can
// be made: breaker open, switched off). The decision names an action: serve
// the cached value, serve a stub, dead-letter the message, or fail.
//
//	func init() {
//		fallback.Handle(func(in *guest.Input) guest.FallbackDecision {
//			if in.CacheAvailable {
//				return guest.FallbackDecision{Action: guest.FallbackCache}
//			}
//			return guest.FallbackDecision{Action: guest.FallbackDeadLetter}
//		})
//	}
package fallback
