// Package fallback makes a module a fallback policy: importing it adds the
// bw_fallback export (ABI v1) to the module, and Handle registers the
// function it runs.
//
// The host calls bw_fallback once retries are over (or when no attempt can
// be made: breaker open, switched off). The decision names an action: serve
// the cached value, serve a stub, dead-letter the message, or fail.
//
//	func init() {
//		fallback.Handle(func(in *sdk.Input) sdk.FallbackDecision {
//			if in.CacheAvailable {
//				return sdk.FallbackDecision{Action: sdk.FallbackCache}
//			}
//			return sdk.FallbackDecision{Action: sdk.FallbackDeadLetter}
//		})
//	}
package fallback
