// Package client is the Go helper for services that call Breakwater: one
// call for a synchronous answer on bw.call.<route> (within a deadline, with
// the outcome said plainly), and one for durable async work on bw.in.<route>.
package client
