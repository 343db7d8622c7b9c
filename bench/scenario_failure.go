package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

func failureScenarios() []harness.Scenario { return nil }
