package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

func restartScenarios() []harness.Scenario { return nil }
