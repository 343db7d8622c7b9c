// Package servicetest starts host/service in-process for tests: from a
// YAML config, run, ready, and stopped when the test ends. It is apart
// from host/testkit so that tests of the packages host/service is built
// from can use the kit without an import cycle.
package servicetest
