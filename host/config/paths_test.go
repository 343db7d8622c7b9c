package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"

	"github.com/breakwater-dev/breakwater/host/config"
)

// TestRelativePaths: a relative path in the config file resolves against
// the file's directory; one from a flag or the environment stays relative
// to the working directory; absolute paths, "none" and defaults are kept.
func TestRelativePaths(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "elsewhere")
	tests := []struct {
		name  string
		file  string            // YAML before the routes
		env   map[string]string // BW_* variables
		flags []string          // serve flags
		// Want, with "<dir>" for the config file's directory.
		store, modules, cache string
	}{
		{
			name:  "relative in the file",
			file:  "nats:\n  embedded:\n    store_dir: data/js\nmodules:\n  dir: mods\n  cache_dir: cache\n",
			store: "<dir>/data/js", modules: "<dir>/mods", cache: "<dir>/cache",
		},
		{
			name:  "dot and parent in the file",
			file:  "nats:\n  embedded:\n    store_dir: ./data\nmodules:\n  dir: ../../modules\n  cache_dir: ./c/../cache\n",
			store: "<dir>/data", modules: "<dir>/../../modules", cache: "<dir>/cache",
		},
		{
			name:  "absolute in the file",
			file:  "nats:\n  embedded:\n    store_dir: " + abs + "/js\nmodules:\n  dir: " + abs + "/mods\n  cache_dir: " + abs + "/cache\n",
			store: abs + "/js", modules: abs + "/mods", cache: abs + "/cache",
		},
		{
			name:  "cache_dir none is not a path",
			file:  "nats:\n  embedded:\n    store_dir: js\nmodules:\n  cache_dir: none\n",
			store: "<dir>/js", modules: "./modules", cache: "",
		},
		{
			name:  "environment overrides the file: relative to the working directory",
			file:  "nats:\n  embedded:\n    store_dir: js\nmodules:\n  dir: mods\n  cache_dir: cache\n",
			env:   map[string]string{"BW_NATS_EMBEDDED_STORE_DIR": "env/js", "BW_MODULES_DIR": "env/mods", "BW_MODULES_CACHE_DIR": "env/cache"},
			store: "env/js", modules: "env/mods", cache: "env/cache",
		},
		{
			name:  "environment without the key in the file",
			file:  "modules:\n  cache_dir: none\n",
			env:   map[string]string{"BW_NATS_EMBEDDED_STORE_DIR": "env/js", "BW_MODULES_DIR": "env/mods"},
			store: "env/js", modules: "env/mods", cache: "",
		},
		{
			name:  "an empty variable does not override the file",
			file:  "nats:\n  embedded:\n    store_dir: js\nmodules:\n  dir: mods\n  cache_dir: none\n",
			env:   map[string]string{"BW_MODULES_DIR": ""},
			store: "<dir>/js", modules: "<dir>/mods", cache: "",
		},
		{
			name:  "flag overrides the file: relative to the working directory",
			file:  "nats:\n  embedded:\n    store_dir: js\nmodules:\n  dir: mods\n  cache_dir: none\n",
			flags: []string{"--nats.embedded.store_dir=flag/js", "--modules.dir=flag/mods"},
			store: "flag/js", modules: "flag/mods", cache: "",
		},
		{
			name:  "flag overrides the environment and the file",
			file:  "nats:\n  embedded:\n    store_dir: js\nmodules:\n  cache_dir: none\n",
			env:   map[string]string{"BW_NATS_EMBEDDED_STORE_DIR": "env/js"},
			flags: []string{"--nats.embedded.store_dir=flag/js"},
			store: "flag/js", modules: "./modules", cache: "",
		},
		{
			name:  "defaults stay relative to the working directory",
			file:  "nats:\n  embedded:\n    store_dir: js\nmodules:\n  cache_dir: none\n",
			store: "<dir>/js", modules: "./modules", cache: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := writeConfig(t, tc.file+validRoutes)
			flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			flags.String("nats.embedded.store_dir", "", "")
			flags.String("modules.dir", "", "") // not a serve flag, but a key like one
			if err := flags.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path, flags)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Dir(path)
			want := func(s string) string {
				if len(s) > 5 && s[:5] == "<dir>" {
					return filepath.Join(dir, s[5:])
				}
				return s
			}
			for key, got := range map[string][2]string{
				"nats.embedded.store_dir": {cfg.NATS.Embedded.StoreDir, want(tc.store)},
				"modules.dir":             {cfg.Modules.Dir, want(tc.modules)},
				"modules.cache_dir":       {cfg.Modules.CacheDir, want(tc.cache)},
			} {
				if got[0] != got[1] {
					t.Errorf("%s = %q, want %q", key, got[0], got[1])
				}
			}
		})
	}
}

// TestRelativePathsRelativeConfig: a config file named by a relative path
// (--config examples/x.yaml) still resolves its paths against its own
// directory, made absolute, whatever the working directory later becomes.
func TestRelativePathsRelativeConfig(t *testing.T) {
	tests := []struct {
		name, config, workdir string // config relative to workdir; both relative to a temp root
	}{
		{"below the working directory", "deploy/prod/breakwater.yaml", "."},
		{"in the working directory", "breakwater.yaml", "."},
		{"beside the working directory", "../conf/breakwater.yaml", "run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			wd := filepath.Join(root, tc.workdir)
			file := filepath.Join(wd, tc.config)
			for _, d := range []string{wd, filepath.Dir(file)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			body := "nats:\n  embedded:\n    store_dir: js\nmodules:\n  dir: ../modules\n  cache_dir: none\n" + validRoutes
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(wd)
			cfg, err := config.Load(tc.config, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Dir(file)
			if want := filepath.Join(dir, "js"); cfg.NATS.Embedded.StoreDir != want {
				t.Errorf("nats.embedded.store_dir = %q, want %q", cfg.NATS.Embedded.StoreDir, want)
			}
			if want := filepath.Join(filepath.Dir(dir), "modules"); cfg.Modules.Dir != want {
				t.Errorf("modules.dir = %q, want %q", cfg.Modules.Dir, want)
			}
			if cfg.File != tc.config {
				t.Errorf("File = %q, want the path as given, %q", cfg.File, tc.config)
			}
		})
	}
}
