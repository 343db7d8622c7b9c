package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The configuration reference, docs/config.md, documents every key in a
// table row whose first cell is the key in backquotes: | `nats.url` | ...
const referenceDoc = "../../docs/config.md"

// configKey is one key of the configuration schema.
type configKey struct {
	key  string
	typ  reflect.Type
	leaf bool // a value; false: a section that is set or not (pointer struct) or a list of sections
}

// configKeys walks the Config struct by reflection: the mapstructure tags
// are the keys, a slice adds "[]", pointers are followed, maps are values.
// Besides the values it lists the optional sections (pointer structs, whose
// presence turns something on) and lists of sections (routes).
func configKeys(t reflect.Type, prefix string) []configKey {
	var keys []configKey
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		if f.Anonymous && strings.Contains(opts, "squash") {
			keys = append(keys, configKeys(ft, prefix)...)
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name) // mapstructure matches the field name
		}
		key := prefix + tag
		switch {
		case ft.Kind() == reflect.Pointer && isSection(ft.Elem()):
			keys = append(keys, configKey{key: key, typ: ft})
			keys = append(keys, configKeys(ft.Elem(), key+".")...)
		case isSection(ft):
			keys = append(keys, configKeys(ft, key+".")...)
		case ft.Kind() == reflect.Slice && isSection(deref(ft.Elem())):
			keys = append(keys, configKey{key: key, typ: ft})
			keys = append(keys, configKeys(deref(ft.Elem()), key+"[].")...)
		default:
			keys = append(keys, configKey{key: key, typ: ft, leaf: true})
		}
	}
	return keys
}

func deref(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// isSection: a struct of this package (time.Time and the like are values).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[Config]().PkgPath()
}

// docRow is a row of the reference: its cells, backquotes kept.
var docRow = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|")

// documented reads the reference's rows by key: the cells after the key.
func documented(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("the configuration reference: %v", err)
	}
	rows := map[string][]string{}
	for line := range strings.Lines(string(b)) {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[m[1]] = cells[1:]
	}
	return rows
}

// TestReferenceDocumentsEveryKey fails for every configuration key that
// docs/config.md has no row for, and for every row naming no key.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	keys := configKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 50 {
		t.Fatalf("walked only %d keys: the walk is broken", len(keys))
	}
	rows := documented(t)
	known := map[string]bool{}
	for _, k := range keys {
		known[k.key] = true
		if _, ok := rows[k.key]; !ok {
			t.Errorf("key %s (%v) is not documented in docs/config.md: add a table row | `%s` | type | default | meaning |", k.key, k.typ, k.key)
		}
	}
	for key := range rows {
		if !known[key] {
			t.Errorf("docs/config.md documents %s, which is not a configuration key (renamed or removed?)", key)
		}
	}
}

// TestReferenceDefaults: a default the reference gives as one literal
// (`4222`, `1m`, `""`) is the one Load applies.
func TestReferenceDefaults(t *testing.T) {
	rows := documented(t)
	for key, want := range defaults {
		cells, ok := rows[key]
		if !ok || len(cells) < 2 {
			t.Errorf("docs/config.md: no type and default for %s", key)
			continue
		}
		cell := cells[1]
		if strings.Count(cell, "`") != 2 || !strings.HasPrefix(cell, "`") || !strings.HasSuffix(cell, "`") {
			continue // derived or explained in words
		}
		lit := strings.Trim(cell, "`")
		var same bool
		switch w := want.(type) {
		case time.Duration:
			d, err := time.ParseDuration(lit)
			same = err == nil && d == w
		case string:
			same = lit == w || lit == `""` && w == ""
		default:
			same = strings.ReplaceAll(lit, "_", "") == strings.TrimSpace(strings.ReplaceAll(fmtValue(w), "_", ""))
		}
		if !same {
			t.Errorf("docs/config.md gives %s the default %s; Load applies %v", key, cell, want)
		}
	}
}

func fmtValue(v any) string { return fmt.Sprint(v) }

// TestPathKeysDocumented: the keys documented with the type "path" are the
// ones whose relative values resolve against the config file's directory.
func TestPathKeysDocumented(t *testing.T) {
	rows := documented(t)
	var doc, code []string
	for key, cells := range rows {
		if len(cells) > 0 && strings.Trim(cells[0], "`") == "path" {
			doc = append(doc, key)
		}
	}
	for _, p := range pathKeys {
		code = append(code, p.key)
	}
	slices.Sort(doc)
	slices.Sort(code)
	if !slices.Equal(doc, code) {
		t.Errorf("keys of type path in docs/config.md %v; resolved against the config file's directory (pathKeys in load.go) %v", doc, code)
	}
}
