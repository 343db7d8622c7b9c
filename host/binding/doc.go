// Package binding connects routes to policy modules: it resolves a route's
// module reference (name, optional pinned version) through a Source, loads
// the module into the engine once per version, and hands the pipeline a
// policy that follows new versions. Reload swaps a module's version
// atomically: calls in flight finish on the old version, which is then
// drained and closed; new calls use the new one.
package binding
