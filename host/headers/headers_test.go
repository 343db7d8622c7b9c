package headers

import "testing"

func TestReserved(t *testing.T) {
	for name, want := range map[string]bool{
		"Nats-Msg-Id": true, "nats-expected-stream": true, "Bw-Outcome": true, "bw-x": true, "BW-": true,
		"X-Stub": false, "Content-Type": false, "Bw": false, "Natsy": false, "": false,
	} {
		if Reserved(name) != want {
			t.Errorf("Reserved(%q) = %v, want %v", name, !want, want)
		}
	}
}
