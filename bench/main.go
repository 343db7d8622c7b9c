// Command bench is Breakwater's benchmark suite (see README.md).
package main

func main() { _ = allScenarios() }
