package topology

import "strings"

// Stream, bucket and subject names.
const (
	StreamIn  = "BW_IN"  // bw.in.<route>: work, work-queue retention
	StreamOut = "BW_OUT" // bw.out.<route>: one terminal outcome per input
	StreamDLQ = "BW_DLQ" // bw.dlq.<route>: dead letters for manual review

	BucketCache    = "bw_cache"    // last-known-good values
	BucketFlags    = "bw_flags"    // flags and kill switches
	BucketAttempts = "bw_attempts" // error history of messages being retried
	BucketModules  = "bw_modules"  // policy modules (object store)
	BucketRoutes   = "bw_routes"   // routes, live: one YAML document per route name

	// StreamDLQData keeps the original message of a dead letter whose
	// record would not fit in one message (bw.dlqdata.<route>).
	StreamDLQData = "BW_DLQ_DATA"
	// StreamDecisions keeps records of policy module decisions
	// (bw.decisions.<route>; host/decisionlog).
	StreamDecisions = "BW_DECISIONS"
	DecisionsPrefix = "bw.decisions."
	DLQDataPrefix   = "bw.dlqdata."

	InPrefix   = "bw.in."
	OutPrefix  = "bw.out."
	DLQPrefix  = "bw.dlq."
	CallPrefix = "bw.call."

	// UnroutedConsumer takes messages on bw.in subjects no route serves.
	UnroutedConsumer = "unrouted"
)

// ReplyNamespaces are the subjects a producer may name in Bw-Reply-To
// unless a route widens them (reply_subjects).
var ReplyNamespaces = []string{"_INBOX.>", "bw.reply.>"}

// InvalidToken stands for a subject token that cannot name a route (too
// long, or not a single token of letters, digits, '-' and '_'): messages
// published on such subjects get their outcome on bw.out._invalid and
// their dead letter on bw.dlq._invalid. Route names may not start with '_'.
const InvalidToken = "_invalid"

// DLQData returns the subject of route's oversized dead-letter originals.
func DLQData(route string) string { return DLQDataPrefix + route }

// In returns the subject producers publish route's work on.
func In(route string) string { return InPrefix + route }

// Out returns the subject route's outcomes are published on.
func Out(route string) string { return OutPrefix + route }

// DLQ returns the subject route's dead letters are parked on.
func DLQ(route string) string { return DLQPrefix + route }

// Call returns the request-reply subject of route's sync path.
func Call(route string) string { return CallPrefix + route }

// RouteConsumer returns the durable consumer name of route.
func RouteConsumer(route string) string { return "route_" + route }

// RouteOfIn returns the route name of a bw.in subject ("" when it is not one
// or has more than one token after the prefix).
func RouteOfIn(subject string) string {
	r, ok := strings.CutPrefix(subject, InPrefix)
	if !ok || r == "" || strings.Contains(r, ".") {
		return ""
	}
	return r
}
