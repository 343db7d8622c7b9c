package render

import (
	"strings"
	"testing"
)

func TestExecute(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		msg     Message
		want    string
		wantErr string
	}{
		{"static", "fixed", Message{}, "fixed", ""},
		{"payload field", "sku-{{.payload.sku}}", Message{Payload: []byte(`{"sku":"A1"}`)}, "sku-A1", ""},
		{"nested payload", "{{.payload.item.id}}", Message{Payload: []byte(`{"item":{"id":7}}`)}, "7", ""},
		{"header", "{{.headers.Tenant}}/{{.route}}", Message{Route: "r", Headers: map[string][]string{"Tenant": {"acme"}}}, "acme/r", ""},
		{"payload not json", "{{.payload.sku}}", Message{Payload: []byte("not json")}, "", "not JSON"},
		{"missing field", "{{.payload.sku}}", Message{Payload: []byte(`{"id":1}`)}, "", "cannot read this message"},
		{"missing header", "{{.headers.Tenant}}", Message{}, "", "cannot read this message"},
		{"empty result", "{{.payload.sku}}", Message{Payload: []byte(`{"sku":""}`)}, "", "empty string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := Parse("cache key", tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Execute(&tt.msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseError(t *testing.T) {
	if _, err := Parse("url", "{{.payload"); err == nil || !strings.Contains(err.Error(), "url template") {
		t.Fatalf("err = %v", err)
	}
}
