package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// validator returns the engine's dry run as the store's validator.
func validator(ctx context.Context, cfg *config.Config) (modulestore.Validator, func(), error) {
	eng, err := engine.New(ctx, engine.Options{CacheDir: cfg.Modules.CacheDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1})
	if err != nil {
		return nil, nil, err
	}
	l := cfg.Modules.Limits
	lim := engine.Limits{Fuel: int64(l.Fuel), WallTime: l.WallTime, MemoryPages: l.MemoryPages, OutputBytes: l.OutputBytes}
	v := func(ctx context.Context, wasm []byte) (modulestore.Info, error) {
		info, err := eng.DryRun(ctx, wasm, lim)
		if err != nil {
			return modulestore.Info{}, err
		}
		kinds := make([]string, len(info.Kinds))
		for i, k := range info.Kinds {
			kinds[i] = string(k)
		}
		return modulestore.Info{Kinds: kinds, ABIVersion: info.ABIVersion}, nil
	}
	return v, func() { _ = eng.Close(context.Background()) }, nil
}

func readSignature(path string) (*modulestore.Signature, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signature file: %w", err)
	}
	var sig modulestore.Signature
	if err := json.Unmarshal(b, &sig); err != nil {
		return nil, fmt.Errorf("signature file %s: %w (want the JSON written by `runtime module sign`)", path, err)
	}
	return &sig, nil
}

func readSeed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

func newModuleCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "module", Short: "Policy modules: check, sign, push, list, show, roll back, remove"}

	withStore := func(f func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error) func(*cobra.Command, []string) error {
		return g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			st, err := modulestore.Open(s.ctx, s.js, modulestore.Options{Replicas: s.cfg.Streams.Replicas, TrustedKeys: s.cfg.Modules.TrustedKeys})
			if err != nil {
				return err
			}
			cmd.SetContext(s.ctx)
			return f(cmd, args, s.cfg, st)
		})
	}

	check := &cobra.Command{
		Use: "check <file.wasm>", Short: "Validate a module locally (no server): parse, imports, exports, ABI version, instrumentation, dry run",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig(nil)
			if err != nil {
				return err
			}
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			validate, closeEngine, err := validator(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine()
			info, err := validate(cmd.Context(), wasm)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: ABI v%d, kinds %s\n", args[0], info.ABIVersion, strings.Join(info.Kinds, ", "))
			return nil
		},
	}

	var name, signKey, sigFile string
	push := &cobra.Command{
		Use: "push <file.wasm> --name <name>", Short: "Validate a module and store it as the next version of <name> (it becomes current on every instance)",
		Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var sig *modulestore.Signature
			switch {
			case signKey != "":
				seed, err := readSeed(signKey)
				if err != nil {
					return err
				}
				if sig, err = modulestore.Sign(seed, wasm); err != nil {
					return err
				}
			case sigFile != "":
				if sig, err = readSignature(sigFile); err != nil {
					return err
				}
			}
			validate, closeEngine, err := validator(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine()
			who := ""
			if u, err := user.Current(); err == nil {
				who = u.Username
			}
			m, err := st.Push(cmd.Context(), name, wasm, sig, validate, who)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s %s (sha256 %s, kinds %s, signer %q); it is current now\n", m.Name, m.VersionString(), m.SHA256[:16], strings.Join(m.Kinds, ","), m.Signer)
			return nil
		}),
	}
	push.Flags().StringVar(&name, "name", "", "module name (required)")
	push.Flags().StringVar(&signKey, "sign-key", "", "nkey seed file to sign with")
	push.Flags().StringVar(&sigFile, "sig", "", "signature file from `runtime module sign`")
	_ = push.MarkFlagRequired("name")

	list := &cobra.Command{
		Use: "list", Short: "List modules and their current versions", Args: cobra.NoArgs,
		RunE: withStore(func(cmd *cobra.Command, _ []string, _ *config.Config, st *modulestore.Store) error {
			all, err := st.List(cmd.Context())
			if err != nil {
				return err
			}
			if len(all) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no modules stored (runtime module push <file.wasm> --name <name>)")
			}
			for _, m := range all {
				fmt.Fprintf(cmd.OutOrStdout(), "%-28s %-5s %-24s sha256 %s  signer %q\n", m.Name, m.VersionString(), strings.Join(m.Kinds, ","), m.SHA256[:16], m.Signer)
			}
			return nil
		}),
	}
	show := &cobra.Command{
		Use: "show <name>", Short: "Show every version of a module", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *config.Config, st *modulestore.Store) error {
			versions, err := st.Versions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, m := range versions {
				mark := " "
				if m.Current {
					mark = "*"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %-5s %8d bytes  sha256 %s  abi v%d  kinds %s  signer %q  uploaded %s by %q\n",
					mark, m.VersionString(), m.Size, m.SHA256, m.ABIVersion, strings.Join(m.Kinds, ","), m.Signer, m.UploadedAt.Format("2006-01-02T15:04:05Z"), m.Uploader)
			}
			return nil
		}),
	}
	var to int
	rollback := &cobra.Command{
		Use: "rollback <name> [--to N]", Short: "Make an earlier version current (default: the one before)", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *config.Config, st *modulestore.Store) error {
			m, err := st.Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s is current now\n", m.Name, m.VersionString())
			return nil
		}),
	}
	rollback.Flags().IntVar(&to, "to", 0, "version to make current")
	rm := &cobra.Command{
		Use: "rm <name>", Short: "Remove every version of a module", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *config.Config, st *modulestore.Store) error {
			if err := st.Remove(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		}),
	}
	var key, out string
	sign := &cobra.Command{
		Use: "sign <file.wasm> --key <seed file>", Short: "Sign a module (writes <file.wasm>.sig)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			seed, err := readSeed(key)
			if err != nil {
				return err
			}
			sig, err := modulestore.Sign(seed, wasm)
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0] + ".sig"
			}
			b, _ := json.Marshal(sig)
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed by %s: %s\n", sig.PublicKey, out)
			return nil
		},
	}
	sign.Flags().StringVar(&key, "key", "", "nkey seed file (from `runtime module keygen`)")
	sign.Flags().StringVar(&out, "out", "", "signature file (default <file.wasm>.sig)")
	_ = sign.MarkFlagRequired("key")
	var seedOut string
	keygen := &cobra.Command{
		Use: "keygen --out <seed file>", Short: "Make a signing key: the seed goes to --out (keep it secret), the public key to stdout (trust it in modules.trusted_keys)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seed, pub, err := modulestore.GenerateKey()
			if err != nil {
				return err
			}
			if err := os.WriteFile(seedOut, append(seed, '\n'), 0o600); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
	keygen.Flags().StringVar(&seedOut, "out", "", "file to write the seed to (required)")
	_ = keygen.MarkFlagRequired("out")
	cmd.AddCommand(check, push, list, show, rollback, rm, sign, keygen)
	return cmd
}
