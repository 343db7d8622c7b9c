package main

import "github.com/breakwater-dev/breakwater/bench/internal/harness"

// allScenarios lists every scenario, in the order they run and print.
func allScenarios() []harness.Scenario {
	var all []harness.Scenario
	for _, group := range [][]harness.Scenario{
		asyncScenarios(),
		failureScenarios(),
		decisionScenarios(),
		syncScenarios(),
		featureScenarios(),
		recordingScenarios(),
		restartScenarios(),
		memoryScenarios(),
	} {
		all = append(all, group...)
	}
	return all
}
