// Package testkit holds helpers for tests against Breakwater: real parts
// only, never mocks of the broker.
//
//   - JetStream starts an embedded nats-server with JetStream on a random
//     loopback port; Connect opens a client (nats.Conn and JetStream).
//   - NewCluster starts an in-process n-node JetStream cluster on loopback
//     whose nodes can be stopped and started again.
//   - NewUpstream is an HTTP target whose answers a test sets.
//   - Module reads a committed policy module from modules/; BuildGuest and
//     GoBuild build from source, for tests that already do.
//   - Eventually polls a condition, bounded; FreePort finds a loopback port.
//   - LogBuffer collects a logger's output for a test to search.
//
// Its subpackage servicetest starts host/service itself from a YAML config
// (servicetest.Service). It is kept apart so that this package imports no
// Breakwater package: tests of any package, in-package ones included, can
// use it without an import cycle, and they do not need host/service to
// build.
//
// Everything listens on 127.0.0.1 only, stores under t.TempDir(), is shut
// down by t.Cleanup, and every wait is bounded in time.
package testkit
