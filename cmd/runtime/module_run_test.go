package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/host/testkit"
)

// moduleFile is the path of a module of modules/ (or a fixture).
func moduleFile(name string) string { return filepath.Join("..", "..", "modules", name) }

// localCLIConfig is a runtime config with no server and no disk cache.
func localCLIConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client.yaml")
	writeFile(t, p, "modules:\n  cache_dir: none\n")
	return p
}

// jsonLines decodes the lines of `module run --json`.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v\n%s", l, err, out)
		}
		lines = append(lines, m)
	}
	return lines
}

const retryInput = `{"route":"orders","attempt":2,"max_attempts":5,"error":{"kind":"status","status":503}}`

// TestModuleRun: decisions, stats and errors, in both output forms.
func TestModuleRun(t *testing.T) {
	cfg := localCLIConfig(t)
	dir := t.TempDir()
	inputFile := filepath.Join(dir, "in.json")
	writeFile(t, inputFile, retryInput)
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  []string // fragments of stdout+stderr+error
		lines int      // --json: the number of lines, each checked by check
		check func(t *testing.T, lines []map[string]any)
	}{
		{name: "human, from a file", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", inputFile},
			want: []string{"input 1: retry decision:", `"retry": true`, `"reason": "exponential backoff"`, "fuel:", "wall time:", "memory pages:", "logs:"}},
		{name: "human, stdin, kind given", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--kind", "retry", "--input", "-"}, stdin: retryInput,
			want: []string{`"retry": true`}},
		{name: "json, several inputs", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-", "--json"},
			stdin: retryInput + "\n" + retryInput + ` {"route":"r","config":{"initial_ms":1000,"max_ms":1000}}`, lines: 3,
			check: func(t *testing.T, lines []map[string]any) {
				for i, l := range lines {
					d, _ := l["decision"].(map[string]any)
					if l["kind"] != "retry" || d["retry"] != true || l["fuel"].(float64) <= 0 || l["memory_pages"].(float64) <= 0 ||
						l["wall_time_ns"].(float64) <= 0 || l["logs"] == nil || l["error"] != nil || l["breach"] != nil {
						t.Errorf("line %d: %v", i+1, l)
					}
				}
				if d := lines[2]["decision"].(map[string]any); d["delay_ms"].(float64) > 1000 {
					t.Errorf("the input's config was not used: %v", d)
				}
			}},
		{name: "config flag", args: []string{"module", "run", moduleFile("stub-template.wasm"), "--input", "-", "--json", "--config", `{"template":{"ok":true}}`},
			stdin: `{"route":"r"}`, lines: 1,
			check: func(t *testing.T, lines []map[string]any) {
				if d, _ := lines[0]["decision"].(map[string]any); d["payload"] != `{"ok":true}` {
					t.Errorf("%v", lines[0])
				}
			}},
		{name: "trap", args: []string{"module", "run", moduleFile("fixtures/trap.wasm"), "--input", "-", "--json"}, stdin: `{"route":"r"} {"route":"r"}`,
			code: exitError, lines: 2,
			check: func(t *testing.T, lines []map[string]any) {
				for _, l := range lines {
					if l["breach"] != "trap" || l["decision"] != nil || !strings.Contains(l["error"].(string), "trap breach") || l["kind"] != "retry" {
						t.Errorf("%v", l)
					}
				}
			}},
		{name: "fuel breach", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-", "--json", "--fuel", "1000"}, stdin: retryInput,
			code: exitError, lines: 1,
			check: func(t *testing.T, lines []map[string]any) {
				if l := lines[0]; l["breach"] != "fuel" || l["fuel"].(float64) < 1000 {
					t.Errorf("%v", l)
				}
			}},
		{name: "the guest panics without its config", args: []string{"module", "run", moduleFile("stub-template.wasm"), "--input", "-"}, stdin: `{"route":"r"}`,
			code: exitError, want: []string{"bw_stub failed", "template is required", "1 of 1 inputs failed"}},
		{name: "malformed input, human", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-"}, stdin: retryInput + `{"route":"r","atempt":2}` + retryInput,
			code: exitError, want: []string{"input 2: error: abi: decoding Input.atempt: unknown field", "input 3: retry decision", "1 of 3 inputs failed"}},
		{name: "malformed input, json", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-", "--json"},
			stdin: `{"route":"r","error":{"kind":"timeout","code":1}} {"route":"r","attempt":"two"}` + retryInput, code: exitError, lines: 3,
			check: func(t *testing.T, lines []map[string]any) {
				if len(lines[0]) != 1 || !strings.Contains(lines[0]["error"].(string), "input 1: abi: decoding Input.error.code: unknown field") {
					t.Errorf("%v", lines[0])
				}
				if !strings.Contains(lines[1]["error"].(string), "input 2: abi: decoding Input.attempt") {
					t.Errorf("%v", lines[1])
				}
				if lines[2]["decision"] == nil {
					t.Errorf("%v", lines[2])
				}
			}},
		{name: "not JSON stops", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-"}, stdin: retryInput + "route: r",
			code: exitError, want: []string{"input 1: retry decision", "input 2: not JSON"}},
		{name: "no input", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-"}, stdin: " ",
			code: exitError, want: []string{"no input"}},
		{name: "unknown kind", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-", "--kind", "retyr"}, stdin: retryInput,
			code: exitError, want: []string{`unknown kind "retyr": want retry, fallback, stub or classify`}},
		{name: "kind not exported", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-", "--kind", "stub"}, stdin: retryInput,
			code: exitError, want: []string{"does not export bw_stub; it exports retry"}},
		{name: "runtime config in --config", args: []string{"module", "run", moduleFile("retry-exponential.wasm"), "--input", "-", "--config", "CFG"}, stdin: retryInput,
			code: exitError, want: []string{"must be a JSON object", "--runtime-config (-c)"}},
		{name: "no such file", args: []string{"module", "run", "nope.wasm", "--input", "-"}, stdin: retryInput,
			code: exitError, want: []string{"nope.wasm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string(nil), tt.args...)
			for i, a := range args {
				if a == "CFG" {
					args[i] = cfg
				}
			}
			if !strings.Contains(strings.Join(args, " "), "--config "+cfg) {
				args = append(args, "-c", cfg)
			}
			var stdin *strings.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			var out, errOut string
			var err error
			if stdin != nil {
				out, errOut, err = runCLIFull(t, stdin, args...)
			} else {
				out, errOut, err = runCLIFull(t, nil, args...)
			}
			all := out + errOut
			if err != nil {
				all += "\nerror: " + err.Error()
			}
			if codeOf(err) != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", codeOf(err), tt.code, all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if tt.lines > 0 {
				lines := jsonLines(t, out)
				if len(lines) != tt.lines {
					t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.lines, out)
				}
				tt.check(t, lines)
			}
		})
	}
}

// TestModuleRunDocExamples runs the example inputs of docs/abi.md ("Inputs
// as JSON") on the modules they name.
func TestModuleRunDocExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- module-run-example: (\\w+) (\\S+) -->\n```json\n(.*?)```")
	examples := re.FindAllStringSubmatch(string(doc), -1)
	kinds := map[string]bool{}
	cfg := localCLIConfig(t)
	for _, ex := range examples {
		kind, module, input := ex[1], ex[2], ex[3]
		kinds[kind] = true
		t.Run(kind, func(t *testing.T) {
			out, errOut, err := runCLIFull(t, strings.NewReader(input), "module", "run", filepath.Join("..", "..", module), "--kind", kind, "--input", "-", "--json", "-c", cfg)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out, errOut)
			}
			l := jsonLines(t, out)
			if len(l) != 1 || l[0]["decision"] == nil || l[0]["kind"] != kind || l[0]["fuel"].(float64) <= 0 {
				t.Fatalf("%s", out)
			}
		})
	}
	for _, k := range []string{"retry", "fallback", "stub", "classify"} {
		if !kinds[k] {
			t.Errorf("docs/abi.md has no module-run-example for %s", k)
		}
	}
}

// TestModuleRunFromStore: NAME and NAME@vN run the stored module.
func TestModuleRunFromStore(t *testing.T) {
	srv := testkit.JetStream(t)
	cli := filepath.Join(t.TempDir(), "cli.yaml")
	writeFile(t, cli, "nats:\n  url: "+srv.URL+"\nmodules:\n  cache_dir: none\n")
	for _, m := range []string{"retry-constant.wasm", "retry-exponential.wasm"} {
		if out, err := runCLI(t, "module", "push", moduleFile(m), "--name", "backoff", "--config", cli); err != nil {
			t.Fatalf("push %s: %v\n%s", m, err, out)
		}
	}
	tests := []struct {
		arg, reason string // reason: of the decision; "" : an error containing fail
		fail        string
	}{
		{"backoff@v1", "constant", ""},
		{"backoff@1", "constant", ""},
		{"backoff", "exponential backoff", ""},
		{"backoff@v2", "exponential backoff", ""},
		{"backoff@v3", "", "version 3"},
		{"nosuch", "", `module "nosuch"`},
		{"backoff@x", "", "a version is v<N>"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			out, errOut, err := runCLIFull(t, strings.NewReader(retryInput), "module", "run", tt.arg, "--input", "-", "--json", "--runtime-config", cli)
			if tt.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fail) {
					t.Fatalf("want an error containing %q, got %v\n%s", tt.fail, err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out, errOut)
			}
			l := jsonLines(t, out)
			if d, _ := l[0]["decision"].(map[string]any); d["reason"] != tt.reason {
				t.Fatalf("%s", out)
			}
		})
	}
}

// TestModuleCheckAndPushConfig: a module that requires a config fails
// check and push without it, and passes with it.
func TestModuleCheckAndPushConfig(t *testing.T) {
	cfg := localCLIConfig(t)
	dir := t.TempDir()
	modCfg := filepath.Join(dir, "stub.json")
	writeFile(t, modCfg, `{"template": {"status": "pending"}}`)
	stubIn := filepath.Join(dir, "stub-in.json")
	writeFile(t, stubIn, `{"route":"orders","payload":"{\"id\":1}","config":{"template":{"id":0},"copy":["id"]}}`)
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"route":"orders","paylod":"x"}`)
	stub := moduleFile("stub-template.wasm")
	tests := []struct {
		args []string
		want string // fragment of the output, or of the error when fail
		fail bool
	}{
		{[]string{"module", "check", stub}, "pass it with --config", true},
		{[]string{"module", "check", stub, "--config", modCfg}, "ok: ABI v1, kinds stub", false},
		{[]string{"module", "check", stub, "--config", `{"template":{"a":1}}`}, "ok: ABI v1, kinds stub", false},
		{[]string{"module", "check", stub, "--input", "stub=" + stubIn}, "ok: ABI v1, kinds stub", false},
		{[]string{"module", "check", stub, "--input", stubIn}, "ok: ABI v1, kinds stub", false},
		{[]string{"module", "check", stub, "--config", modCfg, "--input", "retry=" + stubIn}, "the module exports only stub", true},
		{[]string{"module", "check", stub, "--config", modCfg, "--input", "stub=" + bad}, "Input.paylod: unknown field", true},
		{[]string{"module", "check", stub, "--config", `{"template":`}, "must be a JSON object", true},
		{[]string{"module", "check", stub, "--config", `{"template":"not an object"}`}, "template must be a JSON object", true},
		{[]string{"module", "check", moduleFile("retry-exponential.wasm"), "--config", `{"initial_ms":100}`}, "ok: ABI v1, kinds retry", false},
	}
	for _, tt := range tests {
		out, err := runCLI(t, append(tt.args, "-c", cfg)...)
		if tt.fail {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: want an error containing %q, got %v\n%s", tt.args, tt.want, err, out)
			}
			continue
		}
		if err != nil || !strings.Contains(out, tt.want) {
			t.Errorf("%v: %v\n%s", tt.args, err, out)
		}
	}

	srv := testkit.JetStream(t)
	cli := filepath.Join(t.TempDir(), "cli.yaml")
	writeFile(t, cli, "nats:\n  url: "+srv.URL+"\nmodules:\n  cache_dir: none\n")
	if _, err := runCLI(t, "module", "push", stub, "--name", "stubby", "--config", cli); err == nil || !strings.Contains(err.Error(), "pass it with --module-config") {
		t.Fatalf("push without the module's config: %v", err)
	}
	if out, err := runCLI(t, "module", "push", stub, "--name", "stubby", "--config", cli, "--module-config", modCfg); err != nil || !strings.Contains(out, "pushed stubby v1") {
		t.Fatalf("push with --module-config: %v\n%s", err, out)
	}
}
