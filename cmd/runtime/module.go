package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// validator returns the engine's dry run, with opts (the module's config,
// inputs), as the store's validator.
func validator(ctx context.Context, cfg *config.Config, opts engine.DryRunOptions) (modulestore.Validator, func(), error) {
	eng, err := engine.New(ctx, engine.Options{CacheDir: cfg.Modules.CacheDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PoolSize: 1})
	if err != nil {
		return nil, nil, err
	}
	l := cfg.Modules.Limits
	lim := engine.Limits{Fuel: int64(l.Fuel), WallTime: l.WallTime, MemoryPages: l.MemoryPages, OutputBytes: l.OutputBytes}
	v := func(ctx context.Context, wasm []byte) (modulestore.Info, error) {
		info, err := eng.DryRun(ctx, wasm, lim, opts)
		if err != nil {
			return modulestore.Info{}, err
		}
		kinds := make([]string, len(info.Kinds))
		for i, k := range info.Kinds {
			kinds[i] = string(k)
		}
		return modulestore.Info{Kinds: kinds, ABIVersion: info.ABIVersion, Warnings: info.Warnings}, nil
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
		return nil, fmt.Errorf("signature file %s: %w (want the JSON written by runtime module sign)", path, err)
	}
	return &sig, nil
}

// parseVersion reads a module version given as "v3" or "3" ("" is 0).
func parseVersion(flag, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V"))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q: a version is v<N> or <N> with N ≥ 1, e.g. v3 (runtime module show <name> lists them)", flag, s)
	}
	return n, nil
}

// moduleInUse refuses removing a module a route of cfg names, or any
// module when cfg names no routes.
func moduleInUse(cfg *config.Config, name string) error {
	if len(cfg.Routes) == 0 {
		return fmt.Errorf("refusing to remove module %q: the config in use names no routes, so it cannot tell whether a route uses it; run with the runtime's config, or pass --force", name)
	}
	var users []string
	for _, r := range cfg.Routes {
		for kind, ref := range map[string]*config.ModuleRef{"retry": r.Modules.Retry, "fallback": r.Modules.Fallback, "stub": r.Modules.Stub} {
			if ref != nil && ref.Name == name {
				users = append(users, fmt.Sprintf("route %s (%s)", r.Name, kind))
			}
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("refusing to remove module %q: it is used by %s; change those routes first, or pass --force (they would fall back to older sources or their native policy)", name, strings.Join(users, ", "))
	}
	return nil
}

func readSeed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

func newModuleCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "module", Short: "Policy modules: check, run, sign, push, list, show, roll back, remove; shadow, canary, diff, replay; keys and the trust policy"}

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

	var checkConfig, checkRuntimeConfig string
	var checkInputs []string
	check := &cobra.Command{
		Use: "check <file.wasm> [--config FILE|JSON] [--input [KIND=]FILE]...", Short: "Validate a module locally (no server): parse, imports, exports, ABI version, instrumentation, dry run",
		Long: `Validate a module locally (no server): parse, imports, exports, ABI
version, instrumentation, and a dry run that calls every kind it exports
once, on a sample input or the one --input gives, with the module's config
--config (a module that requires a config fails without it).

NOTE: on this command --config is the module's config (JSON, as in a
route), not the runtime's YAML config; that one is --runtime-config (-c).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadRuntimeConfig(checkRuntimeConfig)
			if err != nil {
				return err
			}
			opts, err := dryRunOptions("--config", checkConfig, checkInputs)
			if err != nil {
				return err
			}
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			validate, closeEngine, err := validator(cmd.Context(), cfg, opts)
			if err != nil {
				return err
			}
			defer closeEngine()
			info, err := validate(cmd.Context(), wasm)
			if err != nil {
				return fmt.Errorf("%s: %w%s", args[0], err, noConfigHint(err, opts, "--config"))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: ABI v%d, kinds %s\n", args[0], info.ABIVersion, strings.Join(info.Kinds, ", "))
			for _, w := range info.Warnings {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: warning: %s\n", args[0], w)
			}
			return nil
		},
	}

	check.Flags().StringVar(&checkConfig, "config", "", moduleConfigUsage)
	check.Flags().StringArrayVar(&checkInputs, "input", nil, "a JSON input record file for the dry run (docs/abi.md): KIND=FILE for one kind, FILE for every kind the module exports; repeatable")
	addRuntimeConfigFlag(check, &checkRuntimeConfig)

	var name, signKey, sigFile, pushConfig string
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
			opts, err := dryRunOptions("--module-config", pushConfig, nil)
			if err != nil {
				return err
			}
			validate, closeEngine, err := validator(cmd.Context(), cfg, opts)
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
				return fmt.Errorf("%w%s", err, noConfigHint(err, opts, "--module-config"))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s %s (sha256 %s, kinds %s, signer %q)", m.Name, m.VersionString(), m.SHA256[:16], strings.Join(m.Kinds, ","), m.Signer)
			if m.Current {
				fmt.Fprintln(cmd.OutOrStdout(), "; it is current now")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "; a newer version pushed at the same time is current (see `runtime module show`)")
			}
			return nil
		}),
	}
	push.Flags().StringVar(&name, "name", "", "module name (required)")
	push.Flags().StringVar(&signKey, "sign-key", "", "nkey seed file to sign with (written by runtime module keygen)")
	push.Flags().StringVar(&sigFile, "sig", "", "signature file written by runtime module sign")
	push.Flags().StringVar(&pushConfig, "module-config", "", "the module's config for the dry run, as a route gives it: a JSON file, or inline JSON starting with '{' (here --config is the runtime's config, as on every operator command)")
	_ = push.MarkFlagRequired("name")

	list := &cobra.Command{
		Use: "list", Short: "List modules and their current versions", Args: cobra.NoArgs,
		RunE: withStore(func(cmd *cobra.Command, _ []string, _ *config.Config, st *modulestore.Store) error {
			all, err := st.List(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if all == nil {
					all = []*modulestore.Meta{}
				}
				return printJSON(cmd.OutOrStdout(), all)
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
		Use: "show <name>", Short: "Show every version of a module and its rollout (shadow, canary, a canary rolled back automatically)", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *config.Config, st *modulestore.Store) error {
			versions, err := st.Versions(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("%w (runtime module list shows the stored modules)", err)
			}
			r, err := st.RolloutOf(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printModuleShow(cmd.OutOrStdout(), g.json(), args[0], versions, r)
		}),
	}
	var to string
	rollback := &cobra.Command{
		Use: "rollback <name> [--to vN]", Short: "Make an earlier version current (default: the one before)", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *config.Config, st *modulestore.Store) error {
			v, err := parseVersion("--to", to)
			if err != nil {
				return err
			}
			m, err := st.Rollback(cmd.Context(), args[0], v)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s is current now\n", m.Name, m.VersionString())
			return nil
		}),
	}
	rollback.Flags().StringVar(&to, "to", "", "version to make current: v3 or 3 (default: the one before the current)")
	var forceRm bool
	rm := &cobra.Command{
		Use: "rm <name> [--force]", Short: "Remove every version of a module (refused while a route of the config uses it, unless --force)", Args: cobra.ExactArgs(1),
		Long: `Remove every version of a module. Refused without --force when a route of the
config in use names the module, or when the config names no routes (it
cannot tell then: pass the runtime's config, or --force).`,
		RunE: withStore(func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error {
			if !forceRm {
				if err := moduleInUse(cfg, args[0]); err != nil {
					return err
				}
			}
			if err := st.Remove(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		}),
	}
	var key, oldKey, out string
	sign := &cobra.Command{
		Use: "sign <file.wasm> --sign-key <seed file>", Short: "Sign a module (writes <file.wasm>.sig)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				key = oldKey
			}
			if key == "" {
				return errors.New("no signing key: pass --sign-key with the seed file written by runtime module keygen")
			}
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
	sign.Flags().StringVar(&key, "sign-key", "", "nkey seed file written by runtime module keygen (required)")
	sign.Flags().StringVar(&oldKey, "key", "", "same as --sign-key")
	_ = sign.Flags().MarkHidden("key")
	sign.Flags().StringVar(&out, "out", "", "signature file (default <file.wasm>.sig)")
	var seedOut string
	var forceKey bool
	keygen := &cobra.Command{
		Use: "keygen --out <seed file> [--force]", Short: "Make a signing key: the seed goes to --out (mode 0600, keep it secret), the public key to stdout (trust it: modules.trusted_keys or `runtime module trust add`)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seed, pub, err := modulestore.GenerateKey()
			if err != nil {
				return err
			}
			if err := writeSeed(seedOut, append(seed, '\n'), forceKey); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
	keygen.Flags().StringVar(&seedOut, "out", "", "file to write the seed to (required; an existing file is kept unless --force)")
	keygen.Flags().BoolVar(&forceKey, "force", false, "replace an existing seed file (the old key is lost)")
	_ = keygen.MarkFlagRequired("out")
	rm.Flags().BoolVar(&forceRm, "force", false, "remove even when a route of the config uses the module, or the config cannot tell")
	addOutputFlag(list, g)
	addOutputFlag(show, g)
	cmd.AddCommand(newTrustCmd(withStore))
	cmd.AddCommand(check, push, list, show, rollback, rm, sign, keygen)
	cmd.AddCommand(newModuleRunCmd())
	cmd.AddCommand(newModuleShadowCmd(withStore))
	cmd.AddCommand(newModulePromoteCmd(withStore))
	cmd.AddCommand(newModuleDiffCmd(g))
	cmd.AddCommand(newModuleReplayCmd(g))
	return cmd
}

// writeSeed writes a signing key seed with mode 0600. An existing file is
// refused unless force: overwriting it would lose the key its modules
// were signed with.
func writeSeed(path string, seed []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("seed file %s already exists: refusing to overwrite a signing key (pass --force to replace it)", path)
	}
	if err != nil {
		return fmt.Errorf("seed file: %w", err)
	}
	// With --force the file may have had a looser mode.
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	if _, err := f.Write(seed); err != nil {
		_ = f.Close()
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	return nil
}

// newTrustCmd manages the trust policy stored in JetStream, which every
// client and runtime enforces whatever its own modules.trusted_keys.
func newTrustCmd(withStore func(func(*cobra.Command, []string, *config.Config, *modulestore.Store) error) func(*cobra.Command, []string) error) *cobra.Command {
	cmd := &cobra.Command{Use: "trust", Short: "Keys trusted to sign modules, stored in JetStream and enforced for every client (secure mode while any is trusted)"}
	show := func(cmd *cobra.Command, p *modulestore.TrustPolicy) {
		if !p.Secure() {
			fmt.Fprintln(cmd.OutOrStdout(), "no trusted keys: secure mode is off, unsigned modules run (runtime module trust add <key>)")
			return
		}
		fmt.Fprintf(cmd.OutOrStdout(), "secure mode: modules must be signed by one of %d trusted keys\n", len(p.Keys))
		for _, k := range p.Keys {
			fmt.Fprintln(cmd.OutOrStdout(), k)
		}
	}
	list := &cobra.Command{
		Use: "list", Short: "List the trusted keys", Args: cobra.NoArgs,
		RunE: withStore(func(cmd *cobra.Command, _ []string, _ *config.Config, st *modulestore.Store) error {
			p, err := st.Policy(cmd.Context())
			if err != nil {
				return err
			}
			show(cmd, p)
			return nil
		}),
	}
	add := &cobra.Command{
		Use: "add <public key>", Short: "Trust a key (turns secure mode on)", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, _ *config.Config, st *modulestore.Store) error {
			p, err := st.TrustKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			show(cmd, p)
			return nil
		}),
	}
	var force bool
	rm := &cobra.Command{
		Use: "rm <public key> [--force]", Short: "Stop trusting a key (the last one only with --force: that turns secure mode off)", Args: cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error {
			p, err := st.UntrustKey(cmd.Context(), args[0], force)
			if err != nil {
				return err
			}
			show(cmd, p)
			if slices.Contains(cfg.Modules.TrustedKeys, args[0]) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: this config's modules.trusted_keys still names %s: every runtime or CLI started with it trusts the key again; remove it there too\n", args[0])
			}
			return nil
		}),
	}
	rm.Flags().BoolVar(&force, "force", false, "allow removing the last trusted key (turns secure mode off)")
	cmd.AddCommand(list, add, rm)
	return cmd
}
