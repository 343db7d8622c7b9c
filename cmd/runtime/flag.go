package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/flagstore"
)

func newFlagCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flag",
		Short: "Flags and kill switches in bw_flags (effective within a second on every instance)",
		Long: `Keys:
  <route>.enabled          false: the route skips its target and goes straight to fallback
  target.<target>.enabled  false: every route calling the target does
  <route>.<name>           a flag the route's policy modules see as <name>
  global.<name>            a flag every route's policy modules see as <name>`,
	}
	run := func(f func(cmd *cobra.Command, args []string, ops flagOps) error) func(*cobra.Command, []string) error {
		return g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			kv, err := flagstore.Bucket(s.ctx, s.js)
			if err != nil {
				return err
			}
			return f(cmd, args, flagOps{ctx: s.ctx, kv: kv})
		})
	}
	cmd.AddCommand(
		&cobra.Command{Use: "set <key> <value>", Short: "Set a flag, e.g. `flag set orders.enabled false`", Args: cobra.ExactArgs(2),
			RunE: run(func(cmd *cobra.Command, a []string, o flagOps) error {
				if err := flagstore.Set(o.ctx, o.kv, a[0], a[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", a[0], a[1])
				return nil
			})},
		&cobra.Command{Use: "get <key>", Short: "Show a flag", Args: cobra.ExactArgs(1),
			RunE: run(func(cmd *cobra.Command, a []string, o flagOps) error {
				v, err := flagstore.Get(o.ctx, o.kv, a[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), v)
				return nil
			})},
		&cobra.Command{Use: "list", Short: "List every flag", Args: cobra.NoArgs,
			RunE: run(func(cmd *cobra.Command, _ []string, o flagOps) error {
				all, err := flagstore.List(o.ctx, o.kv)
				if err != nil {
					return err
				}
				if len(all) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no flags set (every route and target is on)")
				}
				for _, kv := range all {
					fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", kv[0], kv[1])
				}
				return nil
			})},
		&cobra.Command{Use: "rm <key>", Short: "Remove a flag (its default applies again)", Args: cobra.ExactArgs(1),
			RunE: run(func(cmd *cobra.Command, a []string, o flagOps) error {
				if err := flagstore.Delete(o.ctx, o.kv, a[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", a[0])
				return nil
			})},
	)
	return cmd
}
