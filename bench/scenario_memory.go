package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

func memoryScenarios() []harness.Scenario { return nil }
