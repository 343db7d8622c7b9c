// Package flagstore holds flags and kill switches in the KV bucket
// bw_flags and keeps every instance's view of them current: a watcher
// applies each change as it happens (well within a second on every
// instance).
//
// Keys:
//
//	<route>.enabled          "false" switches the route off: it skips its target and goes straight to fallback
//	target.<target>.enabled  "false" switches a target off for every route calling it
//	<route>.<name>           a flag passed to the route's policy modules as <name>
//	global.<name>            a flag passed to every route's policy modules as <name>
//
// Keys hold letters, digits and - _ . only; values are strings, and the
// .enabled keys accept only "true" and "false".
package flagstore
