// Package decision owns the one call path from a route to its policy for
// every decision kind (retry, fallback, stub, classify): the route's module
// when it names one, else (and whenever the module fails or its output is
// unusable) the native policy.
//
// A kind is written once, as a Kind value: its export and how its output
// is checked. Each call gets its own copy of the input record, with the
// module's config, so one message's decisions never see each other's.
package decision
