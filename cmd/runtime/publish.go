package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// publishView is publish's JSON output.
type publishView struct {
	Subject   string       `json:"subject"`
	ID        string       `json:"id"`
	Seq       uint64       `json:"seq"`
	Duplicate bool         `json:"duplicate"`
	Outcome   *outcomeView `json:"outcome,omitempty"`
	// Pending says why there is no outcome (with --wait).
	Pending string `json:"pending,omitempty"`
}

func newPublishCmd(g *globalFlags) *cobra.Command {
	var id, file string
	var wait time.Duration
	var hs []string
	var maxScan int
	cmd := &cobra.Command{
		Use:   "publish <route> [<payload> | -]",
		Short: "Publish work on bw.in.<route> (durably, de-duplicated by --id) and optionally wait for its outcome",
		Long: `Publish work on bw.in.<route>. The payload is the argument, stdin ('-') or a file (-f).

With --wait the command waits for the outcome and prints it. Publishing an
id again within the duplicate window queues nothing; with --wait the stored
outcome of the first publish is looked up on bw.out.<route> (or waited for,
while the message is still in flight).

` + exitCodesHelp + `
Without --wait the exit code is 0 once the message is stored.`,
		Example: `  runtime publish prices '{"sku":"A-1"}' --id order-1 --wait 30s
  runtime publish orders -f order.json -H 'X-Tenant: acme'
  echo '{"order":42}' | runtime publish orders - -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			route := args[0]
			payload, err := readPayload(cmd, args[1:], file)
			if err != nil {
				return err
			}
			h, err := parseHeaders(hs)
			if err != nil {
				return err
			}
			if wait > 0 && h.Get(headers.ReplyTo) != "" {
				return errors.New("--wait receives the outcome on its own inbox: drop -H Bw-Reply-To or --wait")
			}
			return g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
				if id == "" {
					id = nuid.Next()
				}
				m := nats.NewMsg(topology.In(route))
				m.Data = payload
				m.Header = h
				m.Header.Set(headers.MsgID, id)
				var sub *nats.Subscription
				if wait > 0 {
					inbox := s.nc.NewInbox()
					if sub, err = s.nc.SubscribeSync(inbox); err != nil {
						return fmt.Errorf("subscribing to the reply inbox: %w", err)
					}
					defer func() { _ = sub.Unsubscribe() }()
					m.Header.Set(headers.ReplyTo, inbox)
				}
				ack, err := s.js.PublishMsg(s.ctx, m)
				if err != nil {
					return fmt.Errorf("publish to %s: %w (is the route's stream %s there? `runtime serve` creates it)", m.Subject, err, topology.StreamIn)
				}
				out := cmd.OutOrStdout()
				view := &publishView{Subject: m.Subject, ID: id, Seq: ack.Sequence, Duplicate: ack.Duplicate}
				if !g.json() {
					dup := ""
					if ack.Duplicate {
						dup = fmt.Sprintf(" (duplicate: already published with this id as BW_IN seq %d, not queued again)", ack.Sequence)
					}
					fmt.Fprintf(out, "published %s id=%s seq=%d%s\n", m.Subject, id, ack.Sequence, dup)
				}
				var res *client.Result
				var pending error
				switch {
				case wait == 0:
				case !ack.Duplicate:
					msg, err := sub.NextMsg(wait)
					if err != nil {
						pending = withCode(exitNoOutcome, "no outcome within --wait %v: the message is queued or being retried; its outcome will be published on %s (runtime inspect %s %s shows its attempts)", wait, topology.Out(route), route, id)
					} else {
						res = client.ParseOutcome(msg.Header, msg.Data)
					}
				default:
					res, pending = storedOutcome(s, route, id, ack.Sequence, wait, maxScan)
				}
				if g.json() {
					if res != nil {
						view.Outcome = viewOutcome(res)
					}
					if pending != nil {
						view.Pending = pending.Error()
					}
					if err := printJSON(out, view); err != nil {
						return err
					}
				} else if res != nil {
					printOutcome(out, res)
				}
				if pending != nil {
					return pending
				}
				if res != nil {
					return outcomeErr(res.Outcome)
				}
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "message id (Nats-Msg-Id) for de-duplication (default: random)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for the outcome (0: do not wait)")
	cmd.Flags().StringArrayVarP(&hs, "header", "H", nil, headerFlagHelp)
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the payload from this file")
	cmd.Flags().IntVar(&maxScan, "max-scan", 100000, "duplicate id with --wait: read at most this many outcomes of the route looking for the stored one")
	addOutputFlag(cmd, g)
	return cmd
}

// storedOutcome finds the outcome of BW_IN message seq, which a duplicate
// publish named: on bw.out.<route> (bounded look-up), or, while the
// message is in flight, by waiting for it until wait passes.
func storedOutcome(s *session, route, id string, seq uint64, wait time.Duration, maxScan int) (*client.Result, error) {
	deadline := time.Now().Add(wait)
	// Subscribe first: an outcome published during the look-up is seen here.
	live, err := s.nc.SubscribeSync(topology.Out(route))
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s: %w", topology.Out(route), err)
	}
	defer func() { _ = live.Unsubscribe() }()
	res, err := client.FindOutcome(s.ctx, s.js, route, seq, maxScan)
	if err == nil {
		return res, nil
	}
	if !errors.Is(err, client.ErrNoOutcome) {
		return nil, err
	}
	inFlight := false
	if in, serr := s.js.Stream(s.ctx, topology.StreamIn); serr == nil {
		if m, gerr := in.GetMsg(s.ctx, seq); gerr == nil && m.Subject == topology.In(route) {
			inFlight = true
		}
	}
	want := client.OutcomeID(route, seq)
	if !inFlight {
		// Done meanwhile? Its outcome went past the subscription.
		deadline = time.Now().Add(min(wait, 200*time.Millisecond))
	}
	{
		for {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			m, err := live.NextMsg(left)
			if err != nil {
				break
			}
			if m.Header.Get(headers.MsgID) == want {
				return client.ParseOutcome(m.Header, m.Data), nil
			}
		}
	}
	if inFlight {
		return nil, withCode(exitNoOutcome, "no outcome yet: id %s is BW_IN message %d, still in flight (queued or being retried); runtime inspect %s %s shows its attempts", id, seq, route, id)
	}
	return nil, withCode(exitNoOutcome, "no outcome found for id %s (BW_IN message %d) on %s: %v; it is not in flight either, so its outcome expired (streams.out_max_age) or lies beyond --max-scan", id, seq, topology.Out(route), err)
}
