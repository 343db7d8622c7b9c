package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/decisionlog"
	"github.com/breakwater-dev/breakwater/host/engine"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// storeCmd is newModuleCmd's withStore: an operator command with the
// module store open.
type storeCmd = func(func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error) func(*cobra.Command, []string) error

// operator names who changed a rollout (Rollout.UpdatedBy).
func operator() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// openStore opens the module store of a session, as withStore does.
func openStore(s *session) (*modulestore.Store, error) {
	return modulestore.Open(s.ctx, s.js, modulestore.Options{Replicas: s.cfg.Streams.Replicas, TrustedKeys: s.cfg.Modules.TrustedKeys})
}

// requiredVersion reads the version argument of shadow, promote, replay.
func requiredVersion(s string) (int, error) {
	if s == "" {
		return 0, errors.New("no version: give it as v<N> or <N>, e.g. v3 (runtime module show <name> lists them)")
	}
	return parseVersion("version", s)
}

// rolloutRefused says that nothing changed.
func rolloutRefused(name string, err error, opts engine.DryRunOptions) error {
	var re *modulestore.RejectedError
	if errors.As(err, &re) {
		// The store's words are those of push ("nothing stored").
		err = fmt.Errorf("module %q failed the dry run: %w", re.Name, re.Err)
	}
	return fmt.Errorf("%w%s; the rollout of %s is unchanged (runtime module show %s)", err, noConfigHint(err, opts, "--module-config"), name, name)
}

// newModuleShadowCmd is `module shadow NAME vN [--off]`.
func newModuleShadowCmd(withStore storeCmd) *cobra.Command {
	var off bool
	var modCfg string
	cmd := &cobra.Command{
		Use:   "shadow <name> <vN> [--module-config CFG] | shadow <name> --off",
		Short: "Run a version beside the current one on the same inputs: its decisions are recorded and compared, never acted on",
		Long: `Run version vN of a module as its shadow: every instance runs it beside the
current version on the same inputs, records both decisions and whether
they agree (runtime module diff), and acts on the current one only. The
version must be stored, export the current version's kinds and pass the
dry run of push (a module that needs a config: --module-config). --off
stops the shadow. Instances follow the change within a second.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := 0
			switch {
			case off && len(args) == 2:
				return fmt.Errorf("--off stops the shadow: give no version with it (runtime module shadow %s --off)", args[0])
			case !off && len(args) < 2:
				return fmt.Errorf("no version: runtime module shadow %s vN (or --off to stop the shadow)", args[0])
			case !off:
				var err error
				if v, err = requiredVersion(args[1]); err != nil {
					return err
				}
			}
			if err := modulestore.CheckName(args[0]); err != nil {
				return err
			}
			opts, err := dryRunOptions("--module-config", modCfg, nil)
			if err != nil {
				return err
			}
			return withStore(func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error {
				validate, closeEngine, err := validator(cmd.Context(), cfg, opts)
				if err != nil {
					return err
				}
				defer closeEngine()
				r, err := st.SetShadow(cmd.Context(), args[0], v, validate, operator())
				if err != nil {
					return rolloutRefused(args[0], err, opts)
				}
				if v == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: shadow stopped (rollout generation %d)\n", args[0], r.Generation)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: v%d is the shadow now (rollout generation %d): its decisions are recorded and compared, never acted on; see runtime module diff %s\n",
					args[0], v, r.Generation, args[0])
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&off, "off", false, "stop the shadow")
	cmd.Flags().StringVar(&modCfg, "module-config", "", "the module's config for the dry run, as a route gives it: a JSON file, or inline JSON starting with '{' (as on push)")
	return cmd
}

// newModulePromoteCmd is `module promote NAME vN --percent P`.
func newModulePromoteCmd(withStore storeCmd) *cobra.Command {
	var percent int
	var modCfg string
	cmd := &cobra.Command{
		Use:   "promote <name> <vN> --percent P [--module-config CFG]",
		Short: "Send P% of a module's decisions to a version: 1-99 makes it the canary, 100 makes it current, 0 withdraws the canary",
		Long: `Send P% of a module's decisions to version vN, chosen by a stable hash of the
message id: 1-99 makes vN the canary (its decisions are acted on and
recorded), 100 makes it the current version (and ends the canary), 0
withdraws the canary. The version must be stored and pass the dry run of
push (a module that needs a config: --module-config); nothing changes when
a check fails. An instance that sees the canary breach or fail more than
the current version withdraws it automatically (runtime module show says
so). Instances follow the change within a second.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("percent") {
				return errors.New("--percent is required: 1-99 for a canary, 100 to make the version current, 0 to withdraw the canary")
			}
			if percent < 0 || percent > 100 {
				return fmt.Errorf("--percent %d: want 0-100 (1-99 a canary, 100 current, 0 withdraws the canary); nothing changed", percent)
			}
			v, err := requiredVersion(args[1])
			if err != nil {
				return err
			}
			if err := modulestore.CheckName(args[0]); err != nil {
				return err
			}
			opts, err := dryRunOptions("--module-config", modCfg, nil)
			if err != nil {
				return err
			}
			return withStore(func(cmd *cobra.Command, args []string, cfg *config.Config, st *modulestore.Store) error {
				name := args[0]
				if percent == 0 {
					// Withdrawing: vN must be the canary, if there is one.
					cur, err := st.RolloutOf(cmd.Context(), name)
					if err != nil {
						return err
					}
					if cur.Canary != 0 && cur.Canary != v {
						return fmt.Errorf("module %q: v%d is not the canary (v%d is): nothing changed (runtime module promote %s v%d --percent 0 withdraws it)", name, v, cur.Canary, name, cur.Canary)
					}
				}
				validate, closeEngine, err := validator(cmd.Context(), cfg, opts)
				if err != nil {
					return err
				}
				defer closeEngine()
				r, err := st.Promote(cmd.Context(), name, v, percent, validate, operator())
				if err != nil {
					return rolloutRefused(name, err, opts)
				}
				w := cmd.OutOrStdout()
				switch {
				case percent == 100:
					fmt.Fprintf(w, "%s: v%d is current now, deciding every message (rollout generation %d)\n", name, v, r.Generation)
				case percent == 0:
					fmt.Fprintf(w, "%s: canary withdrawn; the current version decides every message (rollout generation %d)\n", name, r.Generation)
				default:
					fmt.Fprintf(w, "%s: v%d is the canary, deciding %d%% of messages (rollout generation %d); runtime module replay %s v%d and runtime decisions list --module %s --role canary show how it does\n",
						name, v, percent, r.Generation, name, v, name)
				}
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().IntVar(&percent, "percent", 0, "share of messages vN decides, 0-100: 1-99 canary, 100 current, 0 withdraws the canary (required)")
	cmd.Flags().StringVar(&modCfg, "module-config", "", "the module's config for the dry run, as a route gives it: a JSON file, or inline JSON starting with '{' (as on push)")
	return cmd
}

// showView is `module show -o json`.
type showView struct {
	Name     string                   `json:"name"`
	Versions []*modulestore.Meta      `json:"versions"`
	Rollout  modulestore.RolloutState `json:"rollout"`
	Active   *activeCanary            `json:"active_canary,omitempty"`
}

type activeCanary struct {
	Version int `json:"version"`
	Percent int `json:"percent"`
}

// printModuleShow writes `module show`: the versions and the rollout.
func printModuleShow(w io.Writer, asJSON bool, name string, versions []*modulestore.Meta, r modulestore.RolloutState) error {
	if asJSON {
		v := showView{Name: name, Versions: versions, Rollout: r}
		if c, p := r.ActiveCanary(); c != 0 {
			v.Active = &activeCanary{Version: c, Percent: p}
		}
		if v.Versions == nil {
			v.Versions = []*modulestore.Meta{}
		}
		return printJSON(w, v)
	}
	for _, m := range versions {
		mark := " "
		if m.Current {
			mark = "*"
		}
		role := ""
		switch {
		case r.Shadow == m.Version:
			role = "  [shadow]"
		case r.Canary == m.Version && r.Percent > 0 && (r.Withdrawn == nil || r.Withdrawn.Generation != r.Generation):
			role = fmt.Sprintf("  [canary %d%%]", r.Percent)
		}
		fmt.Fprintf(w, "%s %-5s %8d bytes  sha256 %s  abi v%d  kinds %s  signer %q  uploaded %s by %q%s\n",
			mark, m.VersionString(), m.Size, m.SHA256, m.ABIVersion, strings.Join(m.Kinds, ","), m.Signer, m.UploadedAt.Format("2006-01-02T15:04:05Z"), m.Uploader, role)
	}
	printRollout(w, r)
	return nil
}

func printRollout(w io.Writer, r modulestore.RolloutState) {
	if r.Generation == 0 {
		fmt.Fprintln(w, "rollout: none (no shadow, no canary)")
		return
	}
	shadow := "none"
	if r.Shadow != 0 {
		shadow = fmt.Sprintf("v%d", r.Shadow)
	}
	canary := "none"
	if c, p := r.ActiveCanary(); c != 0 {
		canary = fmt.Sprintf("v%d at %d%%", c, p)
	}
	fmt.Fprintf(w, "rollout: shadow %s, canary %s; generation %d, updated %s by %q\n", shadow, canary, r.Generation, r.UpdatedAt.Format(time.RFC3339), r.UpdatedBy)
	if wd := r.Withdrawn; wd != nil {
		inst := wd.Instance
		if inst == "" {
			inst = "an instance"
		}
		fmt.Fprintf(w, "canary v%d was rolled back automatically at %s by %s: %s (promote it again, or another version, to start a new canary)\n",
			wd.Canary, wd.At.Format(time.RFC3339), inst, wd.Reason)
	}
}

// sinceTime is the start of --since d (zero: every record kept).
func sinceTime(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-d)
}

func sinceText(d time.Duration, route string) string {
	s := "in the stream"
	if d > 0 {
		s = "in the last " + d.String()
	}
	if route != "" {
		s += " on route " + route
	}
	return s
}

// recordingHint says how to get records.
const recordingHint = "decisions are recorded only when recording is on: set routes[].modules.record (or decisions.sample) for routes that use the module, or run a shadow (runtime module shadow) or a canary (runtime module promote --percent 1-99), whose decisions are always recorded"

// newModuleDiffCmd is `module diff NAME`.
func newModuleDiffCmd(g *globalFlags) *cobra.Command {
	var since time.Duration
	var route string
	var examples int
	cmd := &cobra.Command{
		Use:   "diff <name> [--since 1h] [--route R] [--examples 5]",
		Short: "Compare a module's shadow with its current version over the recorded shadow decisions",
		Long: `Compare a module's shadow with its current version over the shadow's
records (stream BW_DECISIONS): how many decisions agreed, the shadow's
breaches, divergent examples (the message, its input, both decisions), and
the fuel of the shadow against the current version's.`,
		Args: cobra.ExactArgs(1),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			if examples < 0 {
				return fmt.Errorf("--examples %d: want 0 or more", examples)
			}
			name := args[0]
			recs, skipped, err := decisionlog.List(s.ctx, s.js, decisionlog.Filter{Route: route, Module: name, Role: decisionlog.RoleShadow, Since: sinceTime(since)})
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				return fmt.Errorf("no shadow decisions of module %q %s: nothing to compare; start a shadow with runtime module shadow %s vN (its decisions are always recorded) and wait for traffic", name, sinceText(since, route), name)
			}
			rep := decisionlog.DiffExamples(recs, examples)
			if g.json() {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "module %s: shadow %s vs current, %d decisions %s\n", name, strings.Join(rep.Versions, ","), rep.Total, sinceText(since, route))
			fmt.Fprintf(w, "agreed:    %d of %d (%.1f%%)\n", rep.Agreed, rep.Total, 100*rep.AgreementRate)
			fmt.Fprintf(w, "divergent: %d\n", rep.Divergent)
			fmt.Fprintf(w, "breaches:  %d%s\n", rep.Breaches, countsText(rep.BreachesByKind))
			fmt.Fprintf(w, "fuel:      current %.0f, shadow %.0f per decision: %s\n", rep.Fuel.CurrentMean, rep.Fuel.OtherMean, deltaText(rep.Fuel))
			if skipped > 0 {
				fmt.Fprintf(w, "(%d records that did not decode were skipped)\n", skipped)
			}
			printExamples(w, rep.Examples, "current", "shadow", rep.Divergent)
			return nil
		}),
	}
	cmd.Flags().DurationVar(&since, "since", time.Hour, "compare the records of this last period (0: every record kept)")
	cmd.Flags().StringVar(&route, "route", "", "only the records of this route")
	cmd.Flags().IntVar(&examples, "examples", decisionlog.DefaultExamples, "divergent examples to show")
	addOutputFlag(cmd, g)
	return cmd
}

// newModuleReplayCmd is `module replay NAME vN`.
func newModuleReplayCmd(g *globalFlags) *cobra.Command {
	var since, timeout time.Duration
	var route string
	var limit, examples int
	cmd := &cobra.Command{
		Use:   "replay <name> <vN> [--since 1h] [--route R] [--limit N]",
		Short: "Run a stored version locally on the recorded inputs of a module's decisions, and compare",
		Long: `Run version vN of a module, fetched from the store (sha256 and, in secure
mode, signature verified) and loaded locally in a deterministic engine, on
the inputs of the module's recorded decisions that were acted on (roles
current and canary; shadow and truncated records are skipped), and
compare: agreement, divergent examples, the candidate's breaches, and its
fuel against the recorded fuel. Nothing on the server changes.

Decisions are recorded only when recording is on (routes[].modules.record
or decisions.sample), and always for a shadow or a canary.`,
		Args: cobra.ExactArgs(2),
		RunE: g.withSession(func(cmd *cobra.Command, args []string, s *session) error {
			name := args[0]
			v, err := requiredVersion(args[1])
			if err != nil {
				return err
			}
			if limit < 0 || examples < 0 {
				return errors.New("--limit and --examples want 0 or more")
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: want a positive duration", timeout)
			}
			st, err := openStore(s)
			if err != nil {
				return err
			}
			meta, wasm, err := st.Get(s.ctx, name, v)
			if err != nil {
				return fmt.Errorf("module %s v%d: %w (runtime module show %s lists the versions)", name, v, err, name)
			}
			all, skipped, err := decisionlog.List(s.ctx, s.js, decisionlog.Filter{Route: route, Module: name, Since: sinceTime(since)})
			if err != nil {
				return err
			}
			var recs []*decisionlog.Record
			shadows := 0
			for _, r := range all {
				if r.Role == decisionlog.RoleShadow {
					shadows++
					continue
				}
				recs = append(recs, r)
			}
			if limit > 0 && len(recs) > limit {
				recs = recs[len(recs)-limit:] // the most recent
			}
			if len(recs) == 0 {
				more := ""
				if shadows > 0 {
					more = fmt.Sprintf(" (only %d shadow decisions, which were not acted on: runtime module diff %s compares those)", shadows, name)
				}
				return fmt.Errorf("no recorded decisions of module %q to replay %s%s: %s", name, sinceText(since, route), more, recordingHint)
			}

			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cfg := s.cfg
			l := cfg.Modules.Limits
			lim := engine.Limits{Fuel: int64(l.Fuel), WallTime: l.WallTime, MemoryPages: l.MemoryPages, OutputBytes: l.OutputBytes}.WithDefaults()
			eng, err := engine.New(ctx, engine.Options{CacheDir: cfg.Modules.CacheDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				PoolSize: 1, QuarantineAfter: math.MaxInt})
			if err != nil {
				return err
			}
			defer func() { _ = eng.Close(context.Background()) }()
			m, err := eng.Load(ctx, engine.LoadSpec{Name: name, Version: meta.VersionString(), Wasm: wasm, Limits: lim, Deterministic: true})
			if err != nil {
				return fmt.Errorf("module %s v%d: %w", name, v, err)
			}
			defer m.Close(context.Background())
			rep, err := decisionlog.ReplayWith(ctx, m, recs, decisionlog.ReplayOptions{Examples: max(examples, 0)})
			if examples == 0 {
				rep.Examples = []decisionlog.Example{}
			}
			if err != nil {
				return fmt.Errorf("replay stopped after %d of %d records: %w (raise --timeout, or lower --limit)", rep.Compared, len(recs), err)
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "module %s: candidate v%d replayed on %d recorded decisions %s (recorded by %s)\n", name, v, rep.Compared, sinceText(since, route), recordedBy(recs))
			fmt.Fprintf(w, "agreed:    %d of %d (%.1f%%)\n", rep.Agreed, rep.Compared, 100*rep.AgreementRate)
			fmt.Fprintf(w, "same action: %d of %d (%.1f%%; retry or not, fallback action, verdict, whatever the details such as a jittered delay)\n",
				rep.ActionAgreed, rep.Compared, 100*rep.ActionAgreementRate)
			fmt.Fprintf(w, "divergent: %d\n", rep.Divergent)
			fmt.Fprintf(w, "breaches:  %d%s\n", rep.Breaches, countsText(rep.BreachesByKind))
			fmt.Fprintf(w, "fuel:      recorded %d (%.0f per decision), candidate %d (%.0f per decision): %s\n",
				rep.RecordedFuel, rep.Fuel.CurrentMean, rep.CandidateFuel, rep.Fuel.OtherMean, deltaText(rep.Fuel))
			if len(rep.Skipped) > 0 || skipped > 0 || shadows > 0 {
				fmt.Fprintf(w, "skipped:   %s\n", skippedText(rep.Skipped, skipped, shadows))
			}
			printExamples(w, rep.Examples, "recorded", "candidate", rep.Divergent)
			return nil
		}),
	}
	cmd.Flags().DurationVar(&since, "since", time.Hour, "replay the records of this last period (0: every record kept)")
	cmd.Flags().StringVar(&route, "route", "", "only the records of this route")
	cmd.Flags().IntVar(&limit, "limit", 1000, "replay at most the N most recent records (0: all)")
	cmd.Flags().IntVar(&examples, "examples", decisionlog.DefaultExamples, "divergent examples to show")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "bound on running the candidate over the records (each call starts a fresh instance)")
	addOutputFlag(cmd, g)
	return cmd
}

// recordedBy names the versions and roles of recs: "v1 current (3), v2 canary (1)".
func recordedBy(recs []*decisionlog.Record) string {
	n := map[string]int{}
	for _, r := range recs {
		n[r.Version+" "+r.Role]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, n[k])
	}
	return strings.Join(parts, ", ")
}

func skippedText(reasons map[string]int, undecodable, shadows int) string {
	var parts []string
	if shadows > 0 {
		parts = append(parts, fmt.Sprintf("%s: %d", decisionlog.SkipShadow, shadows))
	}
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, reasons[k]))
	}
	if undecodable > 0 {
		parts = append(parts, fmt.Sprintf("records that did not decode: %d", undecodable))
	}
	return strings.Join(parts, "; ")
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func deltaText(d decisionlog.FuelDelta) string {
	if d.CurrentMean == 0 {
		return fmt.Sprintf("%+.0f", d.Delta)
	}
	return fmt.Sprintf("%+.0f (%+.1f%%)", d.Delta, 100*d.Relative)
}

func printExamples(w io.Writer, ex []decisionlog.Example, a, b string, total int) {
	if len(ex) == 0 {
		return
	}
	fmt.Fprintf(w, "divergent examples (%d of %d):\n", len(ex), total)
	for _, e := range ex {
		fmt.Fprintf(w, "- %s route %s %s message %s: %s\n", e.At.Format(time.RFC3339), e.Route, e.Kind, e.MessageID, e.Input)
		fmt.Fprintf(w, "    %-10s %s\n", a+":", e.Current)
		fmt.Fprintf(w, "    %-10s %s\n", b+":", e.Other)
	}
}
