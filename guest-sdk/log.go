package guest

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Level is the severity of a log message. The values are those of log/slog,
// which is how the host interprets them.
type Level int32

// The log levels. Other values are allowed and ordered as in log/slog.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// MaxLogBytes is the largest message Log hands to the host; longer messages
// are cut (at a UTF-8 boundary) and end with "…". The host may apply a lower
// cap of its own.
const MaxLogBytes = 4096

// Log sends a message to the host's log, attributed to the module and route.
//
// fields are alternating keys and values, as with log/slog:
//
//	guest.Log(guest.LevelWarn, "giving up", "attempt", in.Attempt, "status", in.Error.Status)
//
// The message reaches the host as UTF-8 text in logfmt style: msg, then
// " key=value" for each pair, values formatted with fmt.Sprint and quoted
// (strconv.Quote) when empty or when they contain spaces, quotes, '=' or
// non-printable characters. A key without a value is logged under the key
// "!BADKEY".
//
// Inside a module Log calls the host import bw_host.log; it is cheap but not
// free (one host call), so do not log on every decision of a hot route. When
// the package is built for anything but wasip1 (unit tests of policy logic
// on a workstation), messages go to standard error.
func Log(level Level, msg string, fields ...any) {
	b := make([]byte, 0, len(msg)+16*len(fields))
	b = appendLine(b, msg, fields)
	hostLog(level, b)
}

// appendLine formats msg and fields as described on Log, capped at
// MaxLogBytes.
func appendLine(b []byte, msg string, fields []any) []byte {
	b = append(b, msg...)
	for i := 0; i < len(fields); i += 2 {
		var key string
		var val any
		if i+1 < len(fields) {
			key, val = fmt.Sprint(fields[i]), fields[i+1]
		} else {
			key, val = "!BADKEY", fields[i]
		}
		b = append(b, ' ')
		b = appendValue(b, key)
		b = append(b, '=')
		b = appendValue(b, fmt.Sprint(val))
		if len(b) > MaxLogBytes {
			break
		}
	}
	if len(b) > MaxLogBytes {
		cut := MaxLogBytes - len("…")
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = append(b[:cut], "…"...)
	}
	return b
}

func appendValue(b []byte, s string) []byte {
	if needsQuote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '=' || r == '"' || r == utf8.RuneError || !strconv.IsPrint(r) {
			return true
		}
	}
	return false
}

// String returns the level's name as log/slog spells it: DEBUG, INFO, WARN,
// ERROR, with an offset for other values (e.g. "WARN+2").
func (l Level) String() string {
	name := func(base string, d Level) string {
		if d == 0 {
			return base
		}
		return fmt.Sprintf("%s%+d", base, d)
	}
	switch {
	case l < LevelInfo:
		return name("DEBUG", l-LevelDebug)
	case l < LevelWarn:
		return name("INFO", l-LevelInfo)
	case l < LevelError:
		return name("WARN", l-LevelWarn)
	default:
		return name("ERROR", l-LevelError)
	}
}
