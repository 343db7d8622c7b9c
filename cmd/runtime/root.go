package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/breakwater-dev/breakwater/host/config"
)

// globalFlags are shared by every command.
type globalFlags struct {
	configPath string
	// output is the --output of the command run (read commands only).
	output string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "runtime",
		Short:         "Breakwater: a WebAssembly-extensible resilience runtime on NATS JetStream",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `Breakwater: a WebAssembly-extensible resilience runtime on NATS JetStream.

runtime serve runs it; the other commands operate it (docs/cli.md).
` + exitCodesHelp,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return checkOutput(cmd) },
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", os.Getenv("BW_CONFIG"), "YAML config file (env BW_CONFIG)")
	root.AddCommand(newServeCmd(g), newDLQCmd(g), newPublishCmd(g), newCallCmd(g), newInspectCmd(g), newFlagCmd(g), newModuleCmd(g), newRouteCmd(g), newDecisionsCmd(g))
	return root
}

// loadConfig loads the config file, environment and explicitly set flags.
// Operator commands (flags nil) need no routes.
func (g *globalFlags) loadConfig(flags *pflag.FlagSet) (*config.Config, error) {
	if flags == nil {
		return config.LoadClient(g.configPath, nil)
	}
	return config.Load(g.configPath, flags)
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// connect opens a client connection for operator commands: to nats.url, or
// to the embedded server a running `runtime serve` listens on.
func connect(cfg *config.Config) (*nats.Conn, jetstream.JetStream, error) {
	url := cfg.NATS.URL
	if url == "" {
		url = fmt.Sprintf("nats://%s:%d", cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port)
	}
	opts := []nats.Option{nats.Name("breakwater-cli"), nats.Timeout(5 * time.Second)}
	if cfg.NATS.User != "" {
		// Each user's replies arrive under its own inbox prefix, which no
		// other producer may subscribe to.
		opts = append(opts, nats.UserInfo(cfg.NATS.User, cfg.NATS.Password), nats.CustomInboxPrefix("_INBOX."+cfg.NATS.User))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w (is `runtime serve` running with this config? or set nats.url)", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// opContext bounds an operator command.
func opContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, 30*time.Second)
}

// flagOps carries what a flag subcommand needs.
type flagOps struct {
	ctx context.Context
	kv  jetstream.KeyValue
}

// session is what an operator command works with: its config, a NATS
// connection and JetStream, and a bounded context.
type session struct {
	ctx context.Context
	cfg *config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

// withSession wraps an operator command: load the config, connect, bound
// the command's time, and clean up after it.
func (g *globalFlags) withSession(f func(cmd *cobra.Command, args []string, s *session) error) func(*cobra.Command, []string) error {
	return g.withSessionUntil(opContext, f)
}

// withSessionUntil is withSession with the command's context made by
// bound: opContext, or untilInterrupted for a command that follows a
// stream.
func (g *globalFlags) withSessionUntil(bound func(context.Context) (context.Context, context.CancelFunc),
	f func(cmd *cobra.Command, args []string, s *session) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cfg, err := g.loadConfig(nil)
		if err != nil {
			return err
		}
		nc, js, err := connect(cfg)
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := bound(cmd.Context())
		defer cancel()
		return f(cmd, args, &session{ctx: ctx, cfg: cfg, nc: nc, js: js})
	}
}

// untilInterrupted bounds a command that runs until Ctrl-C (or SIGTERM),
// or until its parent context ends.
func untilInterrupted(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
