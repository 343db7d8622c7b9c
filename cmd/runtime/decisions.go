package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/decisionlog"
)

// decisionFilterFlags are the selection flags of decisions list and tail.
type decisionFilterFlags struct {
	route, module, role string
}

func (f *decisionFilterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.route, "route", "", "only the decisions of this route")
	cmd.Flags().StringVar(&f.module, "module", "", "only the decisions of this module (any version)")
	cmd.Flags().StringVar(&f.role, "role", "", "only the decisions of this role: current, canary or shadow")
}

func (f *decisionFilterFlags) filter() (decisionlog.Filter, error) {
	switch f.role {
	case "", decisionlog.RoleCurrent, decisionlog.RoleCanary, decisionlog.RoleShadow:
	default:
		return decisionlog.Filter{}, fmt.Errorf("--role %q: want current, canary or shadow", f.role)
	}
	return decisionlog.Filter{Route: f.route, Module: f.module, Role: f.role}, nil
}

func newDecisionsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decisions",
		Short: "Recorded policy module decisions (stream BW_DECISIONS): list and tail",
		Long: `Recorded policy module decisions (stream BW_DECISIONS): each names the
route, kind, message id, module and version, its role (current, canary or
shadow), the decision or the breach, the fuel and the wall time.

Decisions are recorded when recording is on (routes[].modules.record or
decisions.sample, for the current version), and always for a shadow or a
canary.`,
	}

	var lf decisionFilterFlags
	var since time.Duration
	var limit int
	list := &cobra.Command{
		Use:   "list [--route R] [--module M] [--role current|canary|shadow] [--since 1h] [--limit 50]",
		Short: "List recorded decisions, oldest first",
		Args:  cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			f, err := lf.filter()
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: want 0 (no limit) or more", limit)
			}
			f.Since, f.Limit = sinceTime(since), limit
			recs, skipped, err := decisionlog.List(s.ctx, s.js, f)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, r := range recs {
				if err := writeDecision(w, g.json(), r); err != nil {
					return err
				}
			}
			if !g.json() {
				if len(recs) == 0 {
					fmt.Fprintf(w, "no recorded decisions match %s; %s\n", sinceText(since, f.Route), recordingHint)
				} else if limit > 0 && len(recs) == limit {
					fmt.Fprintf(cmd.ErrOrStderr(), "(the first %d; there may be more: raise --limit or shorten --since)\n", limit)
				}
			}
			if skipped > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d records did not decode and were skipped\n", skipped)
			}
			return nil
		}),
	}
	lf.add(list)
	list.Flags().DurationVar(&since, "since", time.Hour, "the records of this last period (0: every record kept)")
	list.Flags().IntVar(&limit, "limit", 50, "stop after N records (0: no limit)")
	addOutputFlag(list, g)

	var tf decisionFilterFlags
	tail := &cobra.Command{
		Use:   "tail [--route R] [--module M] [--role current|canary|shadow]",
		Short: "Print decisions as they are recorded, until interrupted (Ctrl-C)",
		Args:  cobra.NoArgs,
		RunE: g.withSessionUntil(untilInterrupted, func(cmd *cobra.Command, _ []string, s *session) error {
			f, err := tf.filter()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var werr error
			err = decisionlog.Tail(s.ctx, s.js, f, func(r *decisionlog.Record) bool {
				werr = writeDecision(w, g.json(), r)
				return werr == nil
			})
			if err != nil {
				return err
			}
			return werr
		}),
	}
	tf.add(tail)
	addOutputFlag(tail, g)

	cmd.AddCommand(list, tail)
	return cmd
}

// writeDecision writes a record: one JSON line, or one human line.
func writeDecision(w io.Writer, asJSON bool, r *decisionlog.Record) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s id=%s %s@%s %s ", r.At.Format("2006-01-02T15:04:05.000Z07:00"), r.Route, r.Kind, r.MessageID, r.Module, r.Version, r.Role)
	switch {
	case r.Breach != "" || r.Error != "":
		breach := r.Breach
		if breach == "" {
			breach = "error"
		}
		fmt.Fprintf(&b, "breach=%s: %s", breach, r.Error)
	case len(r.Output) > 0:
		b.Write(r.Output)
	default:
		b.WriteString("output=none")
	}
	fmt.Fprintf(&b, " fuel=%d wall=%s", r.Fuel, time.Duration(r.WallTimeNs))
	if r.Agree != nil {
		fmt.Fprintf(&b, " agree=%t", *r.Agree)
		if !*r.Agree && len(r.CurrentOutput) > 0 {
			fmt.Fprintf(&b, " current=%s", r.CurrentOutput)
		}
	}
	if r.Truncated != "" {
		b.WriteString(" (truncated)")
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
