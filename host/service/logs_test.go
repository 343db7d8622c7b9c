package service_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/breakwater-dev/breakwater/host/service"
)

// TestQuieterLogsAndReadinessDetail (issue 13, item 6): the embedded
// server's banner is at debug level, module warm-up output is debug and
// marked, retry and outcome lines name what decided, and /readyz reports
// per route: consuming, module version, breaker state.
func TestQuieterLogsAndReadinessDetail(t *testing.T) {
	up := newUpstream(t, func(id string, call int) int {
		if call == 1 {
			return 503
		}
		return 200
	})
	e := newEnv(t, moduleDir(t, "retry-status-aware")+"routes:"+routeYAML("decided", up.URL, `    modules:
      retry:
        name: retry-status-aware
        config:
          delay_ms: 1
`))
	e.run()
	e.publish("decided", "d-1", `{"id":"d-1"}`)
	e.outcome("d-1")
	if line := e.logLine(`"msg":"Starting nats-server"`); !strings.Contains(line, `"level":"DEBUG"`) {
		t.Errorf("the server banner is not at debug level: %s", line)
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"warm_up":true`) && !strings.Contains(line, `"level":"DEBUG"`) {
			t.Errorf("warm-up output above debug level: %s", line)
		}
	}
	if line := e.logLine(`"msg":"retry scheduled"`, `"message_id":"d-1"`); !strings.Contains(line, `"decided_by":"retry-status-aware@`) {
		t.Errorf("the retry line does not name the module that decided: %s", line)
	}
	resp, err := http.Get("http://" + e.svc.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep service.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	r := rep.Routes["decided"]
	if resp.StatusCode != http.StatusOK || !r.Consuming || !strings.HasPrefix(r.Modules["retry"], "retry-status-aware@") || rep.Streams["BW_IN"].Error != "" {
		t.Errorf("readyz %d: %+v", resp.StatusCode, rep)
	}
}
