// Package attempttest builds attempt.Routes and Cores for the tests of the
// message path's packages (attempt, pipeline, syncpath): native policies,
// HTTP targets, an optional static stub and cache.
package attempttest
