package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
)

// Template is a parsed per-message template. It is safe for concurrent use.
type Template struct {
	src         string
	tmpl        *template.Template
	readPayload bool
}

// Message is what a template can read.
type Message struct {
	Route     string
	Subject   string
	MessageID string
	Headers   map[string][]string
	Payload   []byte
}

// Parse parses src; name says what the template is for in errors.
func Parse(name, src string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s template %q: %w", name, src, err)
	}
	return &Template{src: src, tmpl: t, readPayload: strings.Contains(src, ".payload")}, nil
}

// Source returns the template text.
func (t *Template) Source() string { return t.src }

// Static reports whether the template has no actions (its output is fixed).
func (t *Template) Static() bool { return !strings.Contains(t.src, "{{") }

// Execute renders the template for m. An error says which template failed
// and why (payload not JSON, a field missing), so it can go into a
// dead-letter record as is.
func (t *Template) Execute(m *Message) (string, error) {
	if t.Static() {
		return t.src, nil
	}
	view := map[string]any{
		"route":      m.Route,
		"subject":    m.Subject,
		"message_id": m.MessageID,
	}
	headers := make(map[string]string, len(m.Headers))
	for k, v := range m.Headers {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	view["headers"] = headers
	if t.readPayload {
		var payload any
		if err := json.Unmarshal(m.Payload, &payload); err != nil {
			return "", fmt.Errorf("%s template %q reads the payload, which is not JSON: %v", t.tmpl.Name(), t.src, err)
		}
		view["payload"] = payload
	}
	var b bytes.Buffer
	if err := t.tmpl.Execute(&b, view); err != nil {
		return "", fmt.Errorf("%s template %q cannot read this message: %v", t.tmpl.Name(), t.src, err)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("%s template %q rendered an empty string for this message", t.tmpl.Name(), t.src)
	}
	return b.String(), nil
}
