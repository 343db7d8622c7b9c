package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/topology"
)

const inFlight = 256

// BenchmarkRawJetStream is the floor: publish to a work-queue stream with
// file storage, consume with a durable pull consumer, ack. Latency is
// publish → delivery.
func BenchmarkRawJetStream(b *testing.B) {
	srv, err := embedded.Start(context.Background(), embedded.Options{Port: -1, StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 65536})
	if err != nil {
		b.Fatal(err)
	}
	n := max(b.N, 1000)
	w := newWindow(n, inFlight)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		i, _ := strconv.Atoi(m.Headers().Get("I"))
		_ = m.Ack()
		w.done(i)
	}, jetstream.PullMaxMessages(inFlight))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	b.ResetTimer()
	w.run(b, n, func(i int) {
		m := nats.NewMsg("raw.x")
		m.Header.Set("I", strconv.Itoa(i))
		m.Header.Set(headers.MsgID, "r"+strconv.Itoa(i))
		m.Data = []byte(`{"id":"x"}`)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkPipeline runs messages through the whole async path with native
// policies against a loopback HTTP target that always succeeds: consume,
// call, store last-known-good, publish the outcome (claimed by id), ack.
// Latency is publish → outcome on bw.out.
func BenchmarkPipeline(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"price":1}`))
	}))
	defer up.Close()
	svc := startService(b, fmt.Sprintf(`
  - name: bench
    target:
      http:
        url: %s
    concurrency: %d
    cache:
      key: '{{.payload.id}}'
`, up.URL, inFlight))
	nc, err := nats.Connect(svc.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	n := max(b.N, 1000)
	w := newWindow(n, inFlight)
	var seenMu sync.Mutex
	seen := make([]bool, n)
	sub, err := nc.Subscribe(topology.Out("bench"), func(m *nats.Msg) {
		i, err := strconv.Atoi(strings.TrimPrefix(m.Header.Get(headers.OriginalID), "p"))
		if err != nil || i >= n {
			return
		}
		seenMu.Lock()
		dup := seen[i]
		seen[i] = true
		seenMu.Unlock()
		if !dup {
			w.done(i)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	b.ResetTimer()
	w.run(b, n, func(i int) {
		m := nats.NewMsg(topology.In("bench"))
		m.Header.Set(headers.MsgID, "p"+strconv.Itoa(i))
		m.Data = []byte(`{"id":"sku-` + strconv.Itoa(i%100) + `"}`)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Error(err)
		}
	})
}
