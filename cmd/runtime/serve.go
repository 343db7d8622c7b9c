package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/service"
)

func newServeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the runtime: embedded NATS with JetStream (unless nats.url is set), routes, health endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			svc, err := service.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		},
	}
	f := cmd.Flags()
	// Flag names are config keys: a flag set explicitly overrides file and env.
	f.String("nats.url", "", "external NATS URL (empty: run the embedded server)")
	f.Int("nats.embedded.port", 4222, "embedded NATS client port (-1: random)")
	f.String("nats.embedded.store_dir", "", "embedded JetStream storage directory")
	f.String("http.listen", "127.0.0.1:8480", "health endpoints address (empty: off)")
	f.String("log.level", "info", "debug, info, warn or error")
	f.String("log.format", "json", "json or text")
	return cmd
}
