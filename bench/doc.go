// Package bench is Breakwater's benchmark suite. Benchmarks report figures
// (msgs/s, latency percentiles, ns per decision); they assert nothing about
// speed. Run them all with
//
//	go test -run '^$' -bench . ./bench/...
//
// and in CI's quick mode with -benchtime 1x.
package bench
