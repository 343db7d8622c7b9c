// Package binding connects routes to policy modules: it resolves a route's
// module reference (name, optional pinned version) through a Source, loads
// the module into the engine once per version, and hands the pipeline a
// policy that follows new versions. Reload swaps a module's version
// atomically: calls in flight finish on the old version, which is then
// drained and closed; new calls use the new one.
//
// A module whose current version cannot be used (missing, corrupt,
// unsigned or untrusted in secure mode, or failing to load) does not stop
// the runtime: the binder serves the newest older version that verifies
// and loads (versions newer than the current pointer were rolled back
// from and are not served), or, when there is none, a policy whose calls
// return ErrNoUsableVersion wrapping the reason, so the pipeline decides
// with the route's native policy. Both are logged at Error level with the
// module, the bad version, the reason and what is served instead. A later
// Reload that finds a usable version starts serving it. The same holds
// for a version in use that does not export the kind a route needs.
// RetryPolicy, FallbackPolicy and StubPolicy fail only for a module (or
// pinned version) that no source knows: a configuration mistake.
//
// DirSource serves modules.dir; with DirSource.Secure set it is not used
// while the store is in secure mode.
package binding
