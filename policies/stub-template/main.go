package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/breakwater-dev/breakwater/guest-sdk"
	"github.com/breakwater-dev/breakwater/guest-sdk/stub"
)

type settings struct {
	Template    json.RawMessage `json:"template"`
	Copy        []string        `json:"copy"`
	ContentType string          `json:"content_type"`

	template map[string]any // Template, decoded by validate
}

func (s *settings) validate() error {
	if len(s.Template) == 0 {
		return errors.New("template is required")
	}
	d := json.NewDecoder(bytes.NewReader(s.Template))
	d.UseNumber() // keep numbers exactly as written
	if err := d.Decode(&s.template); err != nil {
		return fmt.Errorf("template must be a JSON object: %w", err)
	}
	if s.template == nil {
		return errors.New("template must be a JSON object, not null")
	}
	if s.ContentType == "" {
		s.ContentType = "application/json"
	}
	return nil
}

var config = guest.Config[settings]{Validate: (*settings).validate}

func init() {
	stub.Handle(generate)
}

func generate(in *guest.Input) guest.Stub {
	s := config.MustLoad(in.Config)
	doc := make(map[string]any, len(s.template)+len(s.Copy))
	for k, v := range s.template {
		doc[k] = fill(v, in)
	}
	if len(s.Copy) > 0 {
		var payload map[string]json.RawMessage
		if json.Unmarshal(in.Payload, &payload) == nil {
			for _, k := range s.Copy {
				if v, ok := payload[k]; ok {
					doc[k] = v
				}
			}
		}
	}
	body, err := json.Marshal(doc)
	if err != nil { // cannot happen: every value came from JSON
		panic(fmt.Sprintf("stub-template: encoding the stub: %v", err))
	}
	return guest.Stub{
		Payload: body,
		Headers: map[string]string{"Content-Type": s.ContentType, "X-Stub": "true"},
	}
}

// fill returns v with the placeholders replaced; it copies the containers it
// changes, never the cached template.
func fill(v any, in *guest.Input) any {
	switch v := v.(type) {
	case string:
		switch v {
		case "{{route}}":
			return in.Route
		case "{{subject}}":
			return in.Subject
		case "{{message_id}}":
			return in.MessageID
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = fill(e, in)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fill(e, in)
		}
		return out
	}
	return v
}

// main is required by package main; a reactor module never runs it.
func main() {}
