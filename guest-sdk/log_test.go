package guest

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendLine(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		fields []any
		want   string
	}{
		{"message only", "hello", nil, "hello"},
		{"empty message", "", nil, ""},
		{"pairs", "retrying", []any{"attempt", 3, "route", "orders"}, "retrying attempt=3 route=orders"},
		{"quoted values", "x", []any{"msg", "two words", "empty", "", "eq", "a=b", "q", `say "hi"`},
			`x msg="two words" empty="" eq="a=b" q="say \"hi\""`},
		{"non-printable", "x", []any{"k", "a\nb"}, `x k="a\nb"`},
		{"invalid utf-8", "x", []any{"k", "\xff"}, `x k="\xff"`},
		{"odd field count", "x", []any{"k", 1, "dangling"}, "x k=1 !BADKEY=dangling"},
		{"non-string key", "x", []any{42, true}, "x 42=true"},
		{"error value", "x", []any{"err", errString("boom")}, "x err=boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendLine(nil, tt.msg, tt.fields)); got != tt.want {
				t.Errorf("appendLine = %q, want %q", got, tt.want)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestAppendLineCap(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		fields []any
	}{
		{"long message", strings.Repeat("a", 3*MaxLogBytes), nil},
		{"long multibyte message", strings.Repeat("é", MaxLogBytes), nil},
		{"many fields", "m", []any{"a", strings.Repeat("x", MaxLogBytes), "b", 2, "c", 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendLine(nil, tt.msg, tt.fields)
			if len(got) > MaxLogBytes {
				t.Errorf("len = %d, want <= %d", len(got), MaxLogBytes)
			}
			if !utf8.Valid(got) || !strings.HasSuffix(string(got), "…") {
				t.Errorf("capped message is not valid UTF-8 ending in an ellipsis: ...%q", got[max(0, len(got)-10):])
			}
		})
	}
}

func TestLevelString(t *testing.T) {
	tests := []struct {
		l    Level
		want string
	}{
		{LevelDebug, "DEBUG"}, {LevelInfo, "INFO"}, {LevelWarn, "WARN"}, {LevelError, "ERROR"},
		{LevelInfo + 2, "INFO+2"}, {LevelError + 4, "ERROR+4"}, {LevelDebug - 1, "DEBUG-1"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("Level(%d).String() = %q, want %q", int32(tt.l), got, tt.want)
		}
	}
}
