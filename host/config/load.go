package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes environment overrides: BW_NATS_URL sets nats.url,
// BW_HTTP_LISTEN sets http.listen, and so on for every scalar key.
const EnvPrefix = "BW"

// Load reads the configuration: defaults, then the YAML file at path (""
// means none), then BW_* environment variables, then flags that were set
// explicitly (flag names are config keys, e.g. --nats.url). A relative path
// in the file (see pathKeys) resolves against the file's directory; one from
// a flag or the environment stays relative to the working directory. The
// result is validated; any error names the offending field and the file.
func Load(path string, flags *pflag.FlagSet) (*Config, error) { return load(path, flags, true) }

// LoadClient loads the configuration for operator commands: like Load, but
// a file without routes is fine (the commands only need the NATS and
// module settings).
func LoadClient(path string, flags *pflag.FlagSet) (*Config, error) { return load(path, flags, false) }

func load(path string, flags *pflag.FlagSet, requireRoutes bool) (*Config, error) {
	v := viper.New()
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	where := "defaults and environment"
	if path != "" {
		where = path
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("config file %s: does not exist (pass --config with the path of a YAML file, or omit it to run with defaults)", path)
			}
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	fromFlag := map[string]bool{}
	if flags != nil {
		var bindErr error
		flags.Visit(func(f *pflag.Flag) {
			if _, known := defaults[f.Name]; known && bindErr == nil {
				bindErr = v.BindPFlag(f.Name, f)
				fromFlag[f.Name] = true
			}
		})
		if bindErr != nil {
			return nil, fmt.Errorf("binding flags: %w", bindErr)
		}
	}

	cfg := &Config{}
	err := v.UnmarshalExact(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			refuseNegativeUnsigned,
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", where, err)
	}
	cfg.File = path
	cfg.noRoutesOK = !requireRoutes
	if raw, ok := v.Get("routes").([]any); ok {
		cfg.rawRoutes = raw
	}
	if err := resolveFilePaths(v, cfg, path, fromFlag); err != nil {
		return nil, fmt.Errorf("config %s: %w", where, err)
	}
	if err := cfg.finish(); err != nil {
		return nil, fmt.Errorf("config %s: %w", where, err)
	}
	return cfg, nil
}

// pathKeys are the keys holding file-system paths. A relative value set in
// the config file is made absolute against the file's directory, so a config
// means the same whatever the working directory; a value from a flag, the
// environment or a default is left as it is (relative to the working
// directory). Values in keep are not paths ("none"). docs/config.md marks
// these keys with the type "path" (TestPathKeysDocumented).
var pathKeys = []struct {
	key   string
	field func(*Config) *string
	keep  []string
}{
	{"nats.embedded.store_dir", func(c *Config) *string { return &c.NATS.Embedded.StoreDir }, nil},
	{"modules.dir", func(c *Config) *string { return &c.Modules.Dir }, nil},
	{"modules.cache_dir", func(c *Config) *string { return &c.Modules.CacheDir }, []string{"none"}},
}

// resolveFilePaths makes the relative paths the file at path set (and that
// no flag or environment variable overrode) absolute against its directory.
func resolveFilePaths(v *viper.Viper, cfg *Config, path string, fromFlag map[string]bool) error {
	if path == "" {
		return nil
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("resolving the directory of the config file: %w", err)
	}
	for _, p := range pathKeys {
		val := p.field(cfg)
		if *val == "" || filepath.IsAbs(*val) || slices.Contains(p.keep, *val) || !fromFile(v, p.key, fromFlag) {
			continue
		}
		*val = filepath.Join(dir, *val)
	}
	return nil
}

// fromFile reports whether key's value comes from the config file: the file
// sets it and neither a flag nor an environment variable overrides it
// (viper's precedence; an empty variable does not override).
func fromFile(v *viper.Viper, key string, fromFlag map[string]bool) bool {
	if fromFlag[key] {
		return false
	}
	if val, ok := os.LookupEnv(envVar(key)); ok && val != "" {
		return false
	}
	return v.InConfig(key)
}

// envVar is the environment variable overriding key: BW_ and the key in
// upper case with dots as underscores (modules.cache_dir: BW_MODULES_CACHE_DIR).
func envVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// finish applies derived defaults and validates.
func (c *Config) finish() error {
	if c.NATS.URL == "" && c.NATS.Embedded.StoreDir == "" {
		c.NATS.Embedded.StoreDir = defaultStoreDir()
	}
	if c.Modules.CacheDir == "" {
		// Compiled modules survive restarts: a Go guest takes about a
		// second to compile.
		c.Modules.CacheDir = filepath.Join(filepath.Dir(defaultStoreDir()), "wasm-cache")
	} else if c.Modules.CacheDir == "none" {
		c.Modules.CacheDir = ""
	}
	for i := range c.Routes {
		c.Routes[i].applyDefaults()
	}
	return c.Validate()
}

// refuseNegativeUnsigned stops a negative number from wrapping around into
// an unsigned field (fuel: -5 would otherwise load as 18446744073709551611).
func refuseNegativeUnsigned(from, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return data, nil
	}
	negative := false
	switch v := reflect.ValueOf(data); from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		negative = v.Int() < 0
	case reflect.Float32, reflect.Float64:
		negative = v.Float() < 0
	case reflect.String:
		negative = strings.HasPrefix(strings.TrimSpace(v.String()), "-")
	}
	if negative {
		return nil, fmt.Errorf("%v is negative: this field takes a positive whole number", data)
	}
	return data, nil
}
