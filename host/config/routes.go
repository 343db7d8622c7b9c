package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// A route document is one route as stored in the route store (KV
// bw_routes): a YAML mapping with the keys of an item of a config file's
// routes: list. The config file's routes seed the store at the first start;
// `runtime route apply -f FILE` writes them afterwards.

// RouteDocuments returns a document per route the configuration declared
// (file, environment and flags already merged), to seed the route store.
func (c *Config) RouteDocuments() ([][]byte, error) {
	docs := make([][]byte, 0, len(c.rawRoutes))
	for i, raw := range c.rawRoutes {
		b, err := yaml.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		docs = append(docs, b)
	}
	return docs, nil
}

// ReadRoutesFile reads a YAML file holding a routes: list (the schema of a
// config file's routes, nothing else) and returns a document per route.
func ReadRoutesFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routes file: %w", err)
	}
	var f struct {
		Routes []map[string]any `yaml:"routes"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("routes file %s: %w (want a routes: list, as in a config file)", path, err)
	}
	if len(f.Routes) == 0 {
		return nil, fmt.Errorf("routes file %s: no routes: add a routes: list, as in a config file", path)
	}
	docs := make([][]byte, 0, len(f.Routes))
	for i, r := range f.Routes {
		d, err := yaml.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("routes file %s: routes[%d]: %w", path, i, err)
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// ParseRoutes decodes route documents, applies the route defaults and
// validates them as the routes of c (with c's streams and modules
// settings). Every problem is returned, naming the field (routes[i].…);
// nothing is returned unless every route is valid.
func (c *Config) ParseRoutes(docs [][]byte) ([]Route, error) {
	var errs []error
	routes := make([]Route, 0, len(docs))
	for i, d := range docs {
		var raw map[string]any
		if err := yaml.Unmarshal(d, &raw); err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("routes[%d]", i), Reason: err.Error()})
			continue
		}
		var r Route
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			Result: &r, ErrorUnused: true, WeaklyTypedInput: true,
			DecodeHook: mapstructure.ComposeDecodeHookFunc(refuseNegativeUnsigned, mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(",")),
		})
		if err == nil {
			err = dec.Decode(raw)
		}
		if err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("routes[%d]", i), Reason: err.Error()})
			continue
		}
		r.applyDefaults()
		routes = append(routes, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	check := *c
	check.Routes = routes
	check.noRoutesOK = true
	check.NATS.Embedded.Users = nil // user-route checks belong to the server's config
	if err := check.Validate(); err != nil {
		return nil, err
	}
	return routes, nil
}

// RouteNames returns the names of routes, sorted.
func RouteNames(routes []Route) []string {
	names := make([]string, 0, len(routes))
	for _, r := range routes {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}
