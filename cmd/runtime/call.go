package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func newCallCmd(g *globalFlags) *cobra.Command {
	var id, file string
	var timeout time.Duration
	var hs []string
	cmd := &cobra.Command{
		Use:   "call <route> [<payload> | -]",
		Short: "Call a route's sync path (bw.call.<route>) and print the outcome, status and body",
		Long: `Call a route synchronously on bw.call.<route>: the runtime answers within the
shorter of --timeout and the route's deadline, with the target's answer, a
cached value, a stub, or an error. The payload is the argument, stdin ('-')
or a file (-f).

` + exitCodesHelp,
		Example: `  runtime call prices '{"sku":"A-1"}' --timeout 5s
  runtime call prices -f req.json -H 'X-Tenant: acme' -o json`,
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
			if timeout <= 0 {
				return fmt.Errorf("--timeout %v: give a positive duration, e.g. 5s", timeout)
			}
			return g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
				c, err := client.New(s.nc)
				if err != nil {
					return err
				}
				var opts []client.CallOption
				if id != "" {
					opts = append(opts, client.WithID(id))
				}
				for k, vs := range h {
					for _, v := range vs {
						opts = append(opts, client.WithHeader(k, v))
					}
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				res, err := c.Call(ctx, route, payload, opts...)
				var ce *client.CallError
				switch {
				case errors.As(err, &ce):
					// An answer: printed below, exit 7.
				case errors.Is(err, nats.ErrNoResponders):
					return fmt.Errorf("nothing answers on %s: is route %q configured and `runtime serve` running?", topology.Call(route), route)
				case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
					return withCode(exitNoOutcome, "no answer on %s within --timeout %v: raise --timeout, or check the runtime", topology.Call(route), timeout)
				case err != nil:
					return err
				}
				out := cmd.OutOrStdout()
				if g.json() {
					if err := printJSON(out, viewOutcome(res)); err != nil {
						return err
					}
				} else {
					printOutcome(out, res)
				}
				if ce != nil {
					return withCode(exitCallError, "%s answered with an error: %d %s: %s", topology.Call(route), ce.Status, ce.Kind, ce.Message)
				}
				return outcomeErr(res.Outcome)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "message id (logs, Idempotency-Key of HTTP targets)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the answer (sent as "+headers.Deadline+")")
	cmd.Flags().StringArrayVarP(&hs, "header", "H", nil, headerFlagHelp)
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the payload from this file")
	addOutputFlag(cmd, g)
	return cmd
}
