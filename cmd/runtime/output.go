package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/breakwater-dev/breakwater/host/client"
	"github.com/breakwater-dev/breakwater/host/headers"
)

// Output formats of the read commands (--output, -o).
const (
	outputText = "text"
	outputJSON = "json"
)

// addOutputFlag gives a read command --output/-o.
func addOutputFlag(cmd *cobra.Command, g *globalFlags) {
	cmd.Flags().StringVarP(&g.output, "output", "o", outputText, "output format: text or json")
}

// checkOutput refuses an unknown --output value.
func checkOutput(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("output")
	if f == nil {
		return nil
	}
	switch v := f.Value.String(); v {
	case outputText, outputJSON:
		return nil
	default:
		return fmt.Errorf("--output %q: use text or json", v)
	}
}

func (g *globalFlags) json() bool { return g.output == outputJSON }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// body is a payload for JSON output: JSON as is, else a string.
func body(b []byte) any {
	if len(b) > 0 && json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

// outcomeView is an outcome (publish --wait, call) in JSON output.
type outcomeView struct {
	Outcome    string            `json:"outcome"`
	Attempts   int               `json:"attempts"`
	Status     int               `json:"status,omitempty"`
	ErrorKind  string            `json:"error_kind,omitempty"`
	Error      string            `json:"error,omitempty"`
	CacheAgeMs int64             `json:"cache_age_ms,omitempty"`
	OriginalID string            `json:"original_id,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Payload    any               `json:"payload"`
}

func viewOutcome(r *client.Result) *outcomeView {
	v := &outcomeView{Outcome: r.Outcome, Attempts: r.Attempts, Status: r.Status, ErrorKind: r.ErrorKind, Error: r.Error,
		CacheAgeMs: r.CacheAge.Milliseconds(), OriginalID: r.Header.Get(headers.OriginalID), Payload: body(r.Payload)}
	for k := range r.Header {
		if !headers.Reserved(k) {
			if v.Headers == nil {
				v.Headers = map[string]string{}
			}
			v.Headers[k] = r.Header.Get(k)
		}
	}
	return v
}

// printOutcome writes an outcome as text: a summary line, then the body.
func printOutcome(w io.Writer, r *client.Result) {
	fmt.Fprintf(w, "outcome=%s attempts=%d", r.Outcome, r.Attempts)
	if r.Status != 0 {
		fmt.Fprintf(w, " status=%d", r.Status)
	}
	if r.Outcome == headers.OutcomeCached {
		fmt.Fprintf(w, " cache_age=%s", r.CacheAge)
	}
	if r.ErrorKind != "" {
		fmt.Fprintf(w, " last_error=%s: %s", r.ErrorKind, r.Error)
	}
	fmt.Fprintf(w, "\n%s\n", r.Payload)
}

// headerFlagHelp is the help of -H.
const headerFlagHelp = "header K:V to send (repeatable); Nats-* and Bw-* are reserved except Bw-Reply-To and Bw-Deadline-Ms"

// parseHeaders reads -H values ("Key: value").
func parseHeaders(hs []string) (nats.Header, error) {
	h := nats.Header{}
	for _, raw := range hs {
		k, v, ok := strings.Cut(raw, ":")
		k = strings.TrimSpace(k)
		if !ok || !headers.Token(k) {
			return nil, fmt.Errorf("-H %q: want NAME:VALUE with a header name of printable characters, no spaces or ':' (e.g. -H 'X-Tenant: acme')", raw)
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.EqualFold(k, headers.ReplyTo):
			k = headers.ReplyTo
		case strings.EqualFold(k, headers.Deadline):
			k = headers.Deadline
		case strings.EqualFold(k, headers.MsgID):
			return nil, fmt.Errorf("-H %q: set the message id with --id", raw)
		case headers.Reserved(k):
			return nil, fmt.Errorf("-H %q: the Nats- and Bw- header namespaces belong to NATS and the runtime (only Bw-Reply-To and Bw-Deadline-Ms may be set): rename the header", raw)
		}
		h.Add(k, v)
	}
	return h, nil
}

// readPayload takes the payload from the argument, "-" (stdin) or -f FILE.
func readPayload(cmd *cobra.Command, args []string, file string) ([]byte, error) {
	switch {
	case file != "" && len(args) > 0:
		return nil, fmt.Errorf("payload given twice: as an argument and with -f %s; give one", file)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("payload file: %w", err)
		}
		return b, nil
	case len(args) == 0:
		return nil, fmt.Errorf("no payload: give it as an argument, '-' to read stdin, or -f FILE")
	case args[0] == "-":
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("payload from stdin: %w", err)
		}
		return b, nil
	}
	return []byte(args[0]), nil
}
