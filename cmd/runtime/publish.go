package main

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func newPublishCmd(g *globalFlags) *cobra.Command {
	var id string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "publish <route> <payload>",
		Short: "Publish work on bw.in.<route> (durably, de-duplicated by --id) and optionally wait for its outcome",
		Example: `  runtime publish prices '{"sku":"A-1"}' --id order-1 --wait 30s
  runtime publish orders '{"order":42}'`,
		Args: cobra.ExactArgs(2),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			nc, js := s.nc, s.js
			var err error
			if id == "" {
				id = nuid.Next()
			}
			m := nats.NewMsg(topology.In(args[0]))
			m.Data = []byte(args[1])
			m.Header.Set(headers.MsgID, id)
			var sub *nats.Subscription
			if wait > 0 {
				inbox := nc.NewInbox()
				if sub, err = nc.SubscribeSync(inbox); err != nil {
					return err
				}
				m.Header.Set(headers.ReplyTo, inbox)
			}
			ack, err := js.PublishMsg(s.ctx, m)
			if err != nil {
				return fmt.Errorf("publish to %s: %w", m.Subject, err)
			}
			out := cmd.OutOrStdout()
			dup := ""
			if ack.Duplicate {
				dup = " (duplicate: already published with this id, not queued again)"
			}
			fmt.Fprintf(out, "published %s id=%s seq=%d%s\n", m.Subject, id, ack.Sequence, dup)
			if sub == nil || ack.Duplicate {
				return nil
			}
			res, err := sub.NextMsg(wait)
			if err != nil {
				return fmt.Errorf("no outcome within %v (it will still be published on %s): %w", wait, topology.Out(args[0]), err)
			}
			fmt.Fprintf(out, "outcome=%s attempts=%s", res.Header.Get(headers.Outcome), res.Header.Get(headers.Attempts))
			if k := res.Header.Get(headers.ErrorKind); k != "" {
				fmt.Fprintf(out, " last_error=%s: %s", k, res.Header.Get(headers.Error))
			}
			fmt.Fprintf(out, "\n%s\n", res.Data)
			return nil
		}),
	}
	cmd.Flags().StringVar(&id, "id", "", "message id (Nats-Msg-Id) for de-duplication (default: random)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for the outcome (0: do not wait)")
	return cmd
}
