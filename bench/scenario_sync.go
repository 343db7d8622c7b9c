package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

func syncScenarios() []harness.Scenario { return nil }
