// Package decisionlog owns the records of policy module decisions: the
// stream BW_DECISIONS (subjects bw.decisions.<route>), bounded by age and
// size, what a record holds, the Recorder that publishes them without ever
// slowing or failing a decision, and List and Tail that read them back
// (runtime decisions, module diff, module replay).
//
// A record holds the route, the kind, the module's name, version and
// sha256, the role of that version (current, canary or shadow), the input
// record (with the route's module config) and the output, the fuel, the
// wall time and the breach if any. A shadow's record also holds the
// current version's output and fuel and whether the two agreed. A record
// that would not fit in one message (the server's max_payload) has its
// payloads cut, and says so in Truncated.
package decisionlog
