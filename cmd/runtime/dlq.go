package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/deadletter"
)

func newDLQCmd(g *globalFlags) *cobra.Command {
	dlq := &cobra.Command{Use: "dlq", Short: "Inspect and replay dead letters (bw.dlq.<route>)"}
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list <route>",
		Short: "List a route's dead letters, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			parked, err := deadletter.List(s.ctx, s.js, args[0], limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, p := range parked {
					if p.Err != nil {
						_ = enc.Encode(map[string]any{"dlq_seq": p.Seq, "error": p.Err.Error()})
						continue
					}
					_ = enc.Encode(map[string]any{"dlq_seq": p.Seq, "record": p.Record})
				}
				return nil
			}
			if len(parked) == 0 {
				fmt.Fprintf(out, "no dead letters for route %q\n", args[0])
				return nil
			}
			for _, p := range parked {
				if p.Err != nil {
					fmt.Fprintf(out, "#%d  unreadable: %v\n", p.Seq, p.Err)
					continue
				}
				r := p.Record
				last := r.LastError()
				fmt.Fprintf(out, "#%d  id=%s  attempts=%d  dead_at=%s  last=%s", p.Seq, r.MessageID, r.Attempts, r.DeadAt.Format("2006-01-02T15:04:05Z07:00"), last.Kind)
				if last.Status != 0 {
					fmt.Fprintf(out, "(%d)", last.Status)
				}
				fmt.Fprintf(out, "  %s\n      reason: %s\n", last.Message, r.Reason)
			}
			return nil
		}),
	}
	list.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	list.Flags().BoolVar(&asJSON, "json", false, "print full records as JSON lines")

	var ids []string
	replay := &cobra.Command{
		Use:   "replay <route>",
		Short: "Put a route's dead letters back on bw.in.<route> (all, or those named with --id)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			n, err := deadletter.Replay(s.ctx, s.js, args[0], ids)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d dead letter(s) of route %q onto bw.in.%s\n", n, args[0], args[0])
			return nil
		}),
	}
	replay.Flags().StringSliceVar(&ids, "id", nil, "message id to replay (repeatable; default: all)")
	dlq.AddCommand(list, replay)
	return dlq
}
