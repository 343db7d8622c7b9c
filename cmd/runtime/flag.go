package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/config"
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
	run := func(f func(cmd *cobra.Command, args []string, s *session, ops flagOps) error) func(*cobra.Command, []string) error {
		return g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			kv, err := flagstore.Bucket(s.ctx, s.js)
			if err != nil {
				return err
			}
			return f(cmd, args, s, flagOps{ctx: s.ctx, kv: kv})
		})
	}
	set := &cobra.Command{Use: "set <key> <value>", Short: "Set a flag, e.g. runtime flag set orders.enabled false", Args: cobra.ExactArgs(2),
		Long: `Set a flag. A key naming a route or target the config in use does not have is
set anyway, with a warning on stderr (the config may be another instance's).`,
		RunE: run(func(cmd *cobra.Command, a []string, s *session, o flagOps) error {
			if err := flagstore.Set(o.ctx, o.kv, a[0], a[1]); err != nil {
				return err
			}
			warnUnknownFlagKey(cmd.ErrOrStderr(), s.cfg, a[0])
			fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", a[0], a[1])
			return nil
		})}
	get := &cobra.Command{Use: "get <key>", Short: "Show a flag", Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, a []string, _ *session, o flagOps) error {
			v, err := flagstore.Get(o.ctx, o.kv, a[0])
			if err != nil {
				return fmt.Errorf("%w (runtime flag list shows the flags set)", err)
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]string{"key": a[0], "value": v})
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		})}
	addOutputFlag(get, g)
	list := &cobra.Command{Use: "list", Short: "List every flag", Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string, _ *session, o flagOps) error {
			all, err := flagstore.List(o.ctx, o.kv)
			if err != nil {
				return err
			}
			if g.json() {
				v := make([]map[string]string, 0, len(all))
				for _, kv := range all {
					v = append(v, map[string]string{"key": kv[0], "value": kv[1]})
				}
				return printJSON(cmd.OutOrStdout(), v)
			}
			if len(all) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no flags set (every route and target is on)")
			}
			for _, kv := range all {
				fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", kv[0], kv[1])
			}
			return nil
		})}
	addOutputFlag(list, g)
	rm := &cobra.Command{Use: "rm <key>", Short: "Remove a flag (its default applies again)", Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, a []string, _ *session, o flagOps) error {
			if err := flagstore.Delete(o.ctx, o.kv, a[0]); err != nil {
				return fmt.Errorf("%w (runtime flag list shows the flags set)", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", a[0])
			return nil
		})}
	cmd.AddCommand(set, get, list, rm)
	return cmd
}

// warnUnknownFlagKey warns when key names a route or target cfg does not
// have. A config without routes (a client config) cannot tell: no warning.
func warnUnknownFlagKey(w io.Writer, cfg *config.Config, key string) {
	if cfg == nil || len(cfg.Routes) == 0 {
		return
	}
	var routes, targets []string
	for _, r := range cfg.Routes {
		routes = append(routes, r.Name)
		for _, t := range r.Targets {
			targets = append(targets, t.Name)
		}
	}
	first, rest, _ := strings.Cut(key, ".")
	switch first {
	case "global":
		return
	case "target":
		name := strings.TrimSuffix(rest, ".enabled")
		if !slices.Contains(targets, name) {
			fmt.Fprintf(w, "warning: the config in use has no target %q (targets: %s); the flag is set but no route of this config reads it\n", name, strings.Join(slices.Compact(slices.Sorted(slices.Values(targets))), ", "))
		}
	default:
		if !slices.Contains(routes, first) {
			fmt.Fprintf(w, "warning: the config in use has no route %q (routes: %s); the flag is set but no route of this config reads it\n", first, strings.Join(routes, ", "))
		}
	}
}
