// Package config owns Breakwater's configuration: the schema (NATS, HTTP,
// logging, streams, modules and routes), its defaults, loading from a YAML file
// with BW_* environment overrides (spf13/viper), and validation.
//
// Validation is strict: an unknown key, a missing required field or a value
// out of range is an error that names the field and the file, so the process
// never starts half-configured.
package config
