package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/topology"
)

func newRouteCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "route", Short: "Live routes (KV bw_routes): apply, list, show, remove — every instance follows within a second"}
	var file string
	apply := &cobra.Command{
		Use:   "apply -f <routes.yaml>",
		Short: "Validate a routes file (the routes: schema of a config file) as a whole, then store every route in it",
		Long: `Validate a routes file (the routes: schema of a config file) as a whole, then store every
route in it: every instance serves the new or changed routes within a second. A file with
any invalid route is refused whole, naming the field, and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			if file == "" {
				return withCode(exitError, "route apply: -f <routes.yaml> is required")
			}
			docs, err := config.ReadRoutesFile(file)
			if err != nil {
				return err
			}
			routes, err := s.cfg.ParseRoutes(docs)
			if err != nil {
				return fmt.Errorf("%s: %w (nothing was applied)", file, err)
			}
			kv, err := s.js.KeyValue(s.ctx, topology.BucketRoutes)
			if err != nil {
				return fmt.Errorf("bucket %s: %w (is `runtime serve` running against this NATS?)", topology.BucketRoutes, err)
			}
			for i, r := range routes {
				if _, err := kv.Put(s.ctx, r.Name, docs[i]); err != nil {
					return fmt.Errorf("storing route %q: %w (routes before it were applied)", r.Name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied route %s\n", r.Name)
			}
			return nil
		}),
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "routes file (YAML with a routes: list)")

	list := &cobra.Command{
		Use: "list", Short: "List the stored routes", Args: cobra.NoArgs,
		RunE: g.withSession(func(cmd *cobra.Command, _ []string, s *session) error {
			docs, err := storedRoutes(s)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(docs))
			for n := range docs {
				names = append(names, n)
			}
			slices.Sort(names)
			if g.json() {
				out := make([]map[string]any, 0, len(names))
				for _, n := range names {
					var m map[string]any
					_ = yaml.Unmarshal(docs[n], &m)
					out = append(out, m)
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			if len(names) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no routes stored")
			}
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		}),
	}
	show := &cobra.Command{
		Use: "show <route>", Short: "Print a stored route", Args: cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			docs, err := storedRoutes(s)
			if err != nil {
				return err
			}
			d, ok := docs[args[0]]
			if !ok {
				return withCode(exitNotFound, "no route %q is stored (see `runtime route list`)", args[0])
			}
			if g.json() {
				var m map[string]any
				if err := yaml.Unmarshal(d, &m); err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), m)
			}
			fmt.Fprint(cmd.OutOrStdout(), string(d))
			return nil
		}),
	}
	var force bool
	rm := &cobra.Command{
		Use: "rm <route> --force", Short: "Remove a stored route: every instance stops serving it; messages waiting for it are dead-lettered", Args: cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			if !force {
				return withCode(exitError, "route rm %s: every instance stops serving it and messages waiting on bw.in.%s are dead-lettered (replayable once the route is back); pass --force to remove it", args[0], args[0])
			}
			kv, err := s.js.KeyValue(s.ctx, topology.BucketRoutes)
			if err != nil {
				return fmt.Errorf("bucket %s: %w", topology.BucketRoutes, err)
			}
			if _, err := kv.Get(s.ctx, args[0]); errors.Is(err, jetstream.ErrKeyNotFound) {
				return withCode(exitNotFound, "no route %q is stored (see `runtime route list`)", args[0])
			}
			if err := kv.Delete(s.ctx, args[0]); err != nil {
				return err
			}
			msg := fmt.Sprintf("removed route %s", args[0])
			if s.cfg.Route(args[0]) != nil {
				msg += " (the config file names it too: a runtime started with that file stores it again)"
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		}),
	}
	rm.Flags().BoolVar(&force, "force", false, "remove the route")
	for _, c := range []*cobra.Command{list, show} {
		addOutputFlag(c, g)
	}
	cmd.AddCommand(apply, list, show, rm)
	return cmd
}

// storedRoutes reads every route document of bw_routes.
func storedRoutes(s *session) (map[string][]byte, error) {
	kv, err := s.js.KeyValue(s.ctx, topology.BucketRoutes)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w (is `runtime serve` running against this NATS?)", topology.BucketRoutes, err)
	}
	keys, err := kv.ListKeys(s.ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for k := range keys.Keys() {
		e, err := kv.Get(s.ctx, k)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			return nil, err
		}
		out[k] = e.Value()
	}
	return out, nil
}
