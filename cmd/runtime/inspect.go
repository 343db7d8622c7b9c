package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// inspectView is inspect's JSON output.
type inspectView struct {
	Route            string                  `json:"route"`
	ID               string                  `json:"id"`
	InFlight         bool                    `json:"in_flight"`
	DeadLettered     bool                    `json:"dead_lettered,omitempty"`
	Seq              uint64                  `json:"seq,omitempty"`
	Published        *time.Time              `json:"published,omitempty"`
	Deliveries       int                     `json:"deliveries"` // history entries: failed attempts and internal failures
	TargetCalls      int                     `json:"target_calls"`
	InternalFailures int                     `json:"internal_failures"`
	Errors           []abi.AttemptError      `json:"errors"`
	KeptOutcome      *deadletter.SavedResult `json:"kept_outcome,omitempty"`
}

func newInspectCmd(g *globalFlags) *cobra.Command {
	var maxScan int
	cmd := &cobra.Command{
		Use:   "inspect <route> <message id>",
		Short: "Show an in-flight message's attempt history (from BW_IN and KV bw_attempts)",
		Long: `Show a message that is still in flight: its BW_IN sequence, every failed
attempt so far (time, kind, status, message), and an outcome kept for the next
delivery, if any. The message is found on BW_IN by its Nats-Msg-Id (or, for a
message published without one, its BW_IN sequence), reading at most --max-scan
pending messages of the route.

Exit code 8 when the message is not in flight (done, dead-lettered or unknown).`,
		Example: `  runtime inspect orders o-17
  runtime inspect orders o-17 -o json`,
		Args: cobra.ExactArgs(2),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			route, id := args[0], args[1]
			out := cmd.OutOrStdout()
			view := &inspectView{Route: route, ID: id, Errors: []abi.AttemptError{}}
			m, err := deadletter.FindInFlight(s.ctx, s.js, route, id, maxScan)
			if errors.Is(err, deadletter.ErrNotInFlight) {
				dead, _ := deadletter.Find(s.ctx, s.js, route, id)
				view.DeadLettered = len(dead) > 0
				if g.json() {
					_ = printJSON(out, view)
				}
				if view.DeadLettered {
					return withCode(exitNotFound, "message %q of route %q is not in flight: it is dead-lettered (runtime dlq show %s %s)", id, route, route, id)
				}
				return withCode(exitNotFound, "%v: it reached its outcome (published on %s), or no message with this id was published on %s", err, topology.Out(route), topology.In(route))
			}
			if err != nil {
				return err
			}
			view.InFlight, view.Seq = true, m.Sequence
			published := m.Time
			view.Published = &published
			h, err := deadletter.LoadHistory(s.ctx, s.js, route, m.Sequence)
			if err != nil {
				return err
			}
			if h != nil {
				view.Errors = h.Errors
				view.Deliveries = len(h.Errors)
				view.TargetCalls = h.TargetCalls()
				view.InternalFailures = len(h.Errors) - view.TargetCalls
				view.KeptOutcome = h.Result
			}
			if g.json() {
				return printJSON(out, view)
			}
			fmt.Fprintf(out, "message %s of route %s is in flight: BW_IN seq %d, published %s\n", id, route, m.Sequence, m.Time.UTC().Format(timeFormat))
			if rep := m.Header.Get(headers.ReplayOf); rep != "" {
				fmt.Fprintf(out, "replay of:   %s (dead letter #%s)\n", rep, m.Header.Get(headers.Replayed))
			}
			if h == nil || len(h.Errors) == 0 {
				fmt.Fprintln(out, "no failed attempt yet (queued, or its first attempt is being made)")
			} else {
				fmt.Fprintf(out, "deliveries with a failure: %d (%d failed target call(s), %d internal failure(s)), oldest first:\n", view.Deliveries, view.TargetCalls, view.InternalFailures)
				for _, e := range h.Errors {
					printAttempt(out, e)
				}
			}
			if r := h; r != nil && r.Result != nil {
				fmt.Fprintf(out, "kept outcome: %s after %d attempt(s), saved %s (the next delivery publishes it without calling the target)\n",
					r.Result.Outcome, r.Result.Attempts, r.Result.SavedAt.UTC().Format(timeFormat))
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&maxScan, "max-scan", 100000, "read at most this many pending messages of the route looking for the id")
	addOutputFlag(cmd, g)
	return cmd
}
