package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

func decisionScenarios() []harness.Scenario { return nil }
