package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

func asyncScenarios() []harness.Scenario { return nil }
