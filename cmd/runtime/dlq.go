package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/guest-sdk/abi"
	"github.com/breakwater-dev/breakwater/host/deadletter"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// parkedView is a dead letter in JSON output.
type parkedView struct {
	DLQSeq uint64             `json:"dlq_seq"`
	Route  string             `json:"route"`
	Record *deadletter.Record `json:"record,omitempty"`
	Error  string             `json:"error,omitempty"`
}

func viewParked(ps []deadletter.Parked) []parkedView {
	out := make([]parkedView, 0, len(ps))
	for _, p := range ps {
		v := parkedView{DLQSeq: p.Seq, Route: p.Route(), Record: p.Record}
		if p.Err != nil {
			v.Error = p.Err.Error()
		}
		out = append(out, v)
	}
	return out
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// printParkedLine writes a dead letter's one-line summary.
func printParkedLine(w io.Writer, p deadletter.Parked, withRoute bool) {
	route := ""
	if withRoute {
		route = "  route=" + p.Route()
	}
	if p.Err != nil {
		fmt.Fprintf(w, "#%d%s  unreadable: %v\n", p.Seq, route, p.Err)
		return
	}
	r := p.Record
	last := r.LastError()
	fmt.Fprintf(w, "#%d%s  id=%s  attempts=%d  dead_at=%s  last=%s", p.Seq, route, r.MessageID, r.Attempts, r.DeadAt.Format("2006-01-02T15:04:05Z07:00"), last.Kind)
	if last.Status != 0 {
		fmt.Fprintf(w, "(%d)", last.Status)
	}
	fmt.Fprintf(w, "  %s\n      reason: %s\n", last.Message, r.Reason)
}

// printAttempt writes one attempt error.
func printAttempt(w io.Writer, e abi.AttemptError) {
	status := ""
	if e.Status != 0 {
		status = fmt.Sprintf(" status=%d", e.Status)
	}
	fmt.Fprintf(w, "  %2d  %s  %s%s  %s\n", e.Attempt, time.UnixMilli(e.AtUnixMs).UTC().Format(timeFormat), e.Kind, status, e.Message)
}

// printParkedFull writes everything a dead letter holds.
func printParkedFull(w io.Writer, p deadletter.Parked) {
	if p.Err != nil {
		fmt.Fprintf(w, "dead letter #%d (%s): unreadable: %v\n", p.Seq, p.Subject, p.Err)
		return
	}
	r := p.Record
	fmt.Fprintf(w, "dead letter #%d of route %s\n", p.Seq, r.Route)
	fmt.Fprintf(w, "id:          %s\nsubject:     %s (BW_IN seq %d)\nfirst seen:  %s\ndead at:     %s\nattempts:    %d\nreason:      %s\n",
		r.MessageID, r.Subject, r.StreamSeq, r.FirstSeen.Format(timeFormat), r.DeadAt.Format(timeFormat), r.Attempts, r.Reason)
	fmt.Fprintf(w, "errors (%d, oldest first):\n", len(r.Errors))
	for _, e := range r.Errors {
		printAttempt(w, e)
	}
	if len(r.Headers) > 0 {
		keys := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(w, "headers:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(r.Headers[k], ", "))
		}
	}
	if r.Original != nil {
		fmt.Fprintf(w, "payload:     kept in %s seq %d (%d bytes; too large for the record)\n", r.Original.Stream, r.Original.Seq, r.Original.Size)
		return
	}
	fmt.Fprintf(w, "payload (%d bytes):\n%s\n", len(r.Payload), r.Payload)
}

// summary lists what an operation would touch, at most 10 lines.
func summary(ps []deadletter.Parked) string {
	var b strings.Builder
	for i, p := range ps {
		if i == 10 {
			fmt.Fprintf(&b, "\n  … and %d more", len(ps)-10)
			break
		}
		id := "(unreadable)"
		if p.Record != nil {
			id = "id=" + p.Record.MessageID
		}
		fmt.Fprintf(&b, "\n  #%d %s", p.Seq, id)
	}
	return b.String()
}

func newDLQCmd(g *globalFlags) *cobra.Command {
	dlq := &cobra.Command{Use: "dlq", Short: "Inspect, replay and remove dead letters (bw.dlq.<route>)"}

	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [<route>]",
		Short: "List dead letters, oldest first: of one route, or of every route",
		Args:  cobra.MaximumNArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			if asJSON {
				g.output = outputJSON
			}
			var parked []deadletter.Parked
			var err error
			if len(args) == 1 {
				parked, err = deadletter.List(s.ctx, s.js, args[0], limit)
			} else {
				parked, err = deadletter.ListAll(s.ctx, s.js, limit)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json() {
				return printJSON(out, viewParked(parked))
			}
			if len(parked) == 0 {
				if len(args) == 1 {
					fmt.Fprintf(out, "no dead letters for route %q\n", args[0])
				} else {
					fmt.Fprintln(out, "no dead letters")
				}
				return nil
			}
			for _, p := range parked {
				printParkedLine(out, p, len(args) == 0)
			}
			return nil
		}),
	}
	list.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	list.Flags().BoolVar(&asJSON, "json", false, "same as --output json")
	_ = list.Flags().MarkHidden("json")
	addOutputFlag(list, g)

	show := &cobra.Command{
		Use:   "show <route> <dlq seq | message id>",
		Short: "Show a dead letter in full: every attempt, the headers and the payload",
		Long:  "Show a dead letter in full. Exit code 8 when the route has no such dead letter.",
		Args:  cobra.ExactArgs(2),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			found, err := findParked(s, args[0], args[1])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json() {
				return printJSON(out, viewParked(found))
			}
			for i, p := range found {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printParkedFull(out, p)
			}
			return nil
		}),
	}
	addOutputFlag(show, g)

	var ids []string
	replay := &cobra.Command{
		Use:   "replay <route>",
		Short: "Put a route's dead letters back on bw.in.<route> (all, or those named with --id)",
		Long: `Put dead letters back on bw.in.<route> with their original payload and headers
and remove them from the DLQ. Each replay gets the message id
<id>-replay-<dlq seq>, Bw-Replayed-From: <dlq seq> and Bw-Replay-Of: <the
producer's original id> (kept through repeated replays).`,
		Args: cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			n, err := deadletter.Replay(s.ctx, s.js, args[0], ids)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d dead letter(s) of route %q onto bw.in.%s\n", n, args[0], args[0])
			return nil
		}),
	}
	replay.Flags().StringSliceVar(&ids, "id", nil, "message id or dlq seq to replay (repeatable; default: all)")

	var forceRm bool
	rm := &cobra.Command{
		Use:   "rm <route> <dlq seq | message id> --force",
		Short: "Remove a dead letter without replaying it (refused without --force)",
		Args:  cobra.ExactArgs(2),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			found, err := findParked(s, args[0], args[1])
			if err != nil {
				return err
			}
			if !forceRm {
				return fmt.Errorf("refusing to remove without --force; it would remove %d dead letter(s) of route %q:%s", len(found), args[0], summary(found))
			}
			n, err := deadletter.Remove(s.ctx, s.js, found)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d dead letter(s) of route %q:%s\n", n, args[0], summary(found))
			return nil
		}),
	}
	rm.Flags().BoolVar(&forceRm, "force", false, "really remove it (the message is lost)")

	var forcePurge bool
	purge := &cobra.Command{
		Use:   "purge <route> --force",
		Short: "Remove every dead letter of a route (refused without --force)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			parked, err := deadletter.List(s.ctx, s.js, args[0], 0)
			if err != nil {
				return err
			}
			if len(parked) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no dead letters for route %q: nothing to purge\n", args[0])
				return nil
			}
			if !forcePurge {
				return fmt.Errorf("refusing to purge without --force; it would remove %d dead letter(s) of route %q from %s:%s", len(parked), args[0], topology.DLQ(args[0]), summary(parked))
			}
			if err := deadletter.Purge(s.ctx, s.js, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letter(s) of route %q\n", len(parked), args[0])
			return nil
		}),
	}
	purge.Flags().BoolVar(&forcePurge, "force", false, "really remove them (the messages are lost)")

	dlq.AddCommand(list, show, replay, rm, purge)
	return dlq
}

// findParked returns route's dead letters with DLQ sequence or message id
// ref; none is an error with the not-found exit code.
func findParked(s *session, route, ref string) ([]deadletter.Parked, error) {
	found, err := deadletter.Find(s.ctx, s.js, route, ref)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, withCode(exitNotFound, "route %q has no dead letter with sequence or id %q (see runtime dlq list %s)", route, ref, route)
	}
	return found, nil
}
