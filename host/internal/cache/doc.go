// Package cache owns last-known-good values: the latest successful answer
// per route and cache key, in the KV bucket bw_cache. Freshness is the age of
// the KV entry against the route's TTL, so one bucket serves routes with
// different TTLs.
package cache
