package subject

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckReply(t *testing.T) {
	allowed := []string{"_INBOX.>", "bw.reply.>", "orders.replies.*"}
	tests := []struct {
		subject string
		ok      bool
	}{
		{"_INBOX.abc.def", true},
		{"bw.reply.orders.1", true},
		{"orders.replies.x", true},
		{"orders.replies.x.y", false},
		{"_INBOX", false},
		{"$JS.API.STREAM.PURGE.BW_IN", false},
		{"$JS.API.STREAM.DELETE.BW_DLQ", false},
		{"$KV.bw_flags.orders.enabled", false},
		{"bw.dlq.payments", false},
		{"_BW_INBOX.x.y", false},
		{"_INBOX.*", false},
		{"_INBOX.>", false},
		{"_INBOX..x", false},
		{"_INBOX.a b", false},
		{"_INBOX.a\x00", false},
		{"_INBOX." + strings.Repeat("x", 5000), false},
		{"", false},
	}
	for _, tt := range tests {
		err := CheckReply(tt.subject, allowed)
		if (err == nil) != tt.ok {
			t.Errorf("CheckReply(%.40q) = %v, want ok=%v", tt.subject, err, tt.ok)
		}
		var re *ReplyError
		if err != nil && (!errors.As(err, &re) || !errors.Is(err, ErrInvalid) || len(re.Subject) > MaxReply+len("…")) {
			t.Errorf("CheckReply(%.40q): error %v is not a bounded *ReplyError", tt.subject, err)
		}
	}
}

func TestValidToken(t *testing.T) {
	for s, ok := range map[string]bool{
		"orders": true, "a-b_C9": true, "": false, "a.b": false, "a*": false,
		strings.Repeat("x", MaxToken): true, strings.Repeat("x", MaxToken+1): false, "é": false,
	} {
		if ValidToken(s) != ok {
			t.Errorf("ValidToken(%.20q) = %v, want %v", s, !ok, ok)
		}
	}
}

func TestMatchAndOverlaps(t *testing.T) {
	match := []struct {
		p, s string
		ok   bool
	}{
		{"a.>", "a.b", true}, {"a.>", "a", false}, {"a.*", "a.b", true}, {"a.*", "a.b.c", false},
		{"a.b", "a.b", true}, {"a.b", "a.c", false}, {">", "x", true},
	}
	for _, tt := range match {
		if Match(tt.p, tt.s) != tt.ok {
			t.Errorf("Match(%q, %q) = %v", tt.p, tt.s, !tt.ok)
		}
	}
	overlap := []struct {
		a, b string
		ok   bool
	}{
		{"$JS.>", "$JS.API.*", true}, {"bw.out.>", "bw.*.x", true}, {"bw.reply.>", "bw.out.>", false},
		{"a.*", "a", false}, {">", "a.b", true}, {"a.b", "a.b", true}, {"a.b.c", "a.*", false},
	}
	for _, tt := range overlap {
		if Overlaps(tt.a, tt.b) != tt.ok || Overlaps(tt.b, tt.a) != tt.ok {
			t.Errorf("Overlaps(%q, %q) != %v", tt.a, tt.b, tt.ok)
		}
	}
}
