package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/flagstore"
	"github.com/breakwater-dev/breakwater/host/headers"
	"github.com/breakwater-dev/breakwater/host/modulestore"
)

// TestProducerPermissions: a producer may publish work but may not upload
// a module or flip a flag; the admin may.
func TestProducerPermissions(t *testing.T) {
	up := newUpstream(t, always(200))
	dir := t.TempDir()
	svc := runService(t, fmt.Sprintf(`
nats:
  user: ops
  password: ops-secret
  embedded:
    port: -1
    store_dir: %s
    users:
      - {user: ops, password: ops-secret, role: admin}
      - {user: shop, password: shop-secret, role: producer}
http:
  listen: ""
routes:%s`, filepath.Join(dir, "js"), routeYAML("orders", up.URL, "")))
	ctx := context.Background()

	if _, err := nats.Connect(svc.NATSURL()); err == nil {
		t.Fatal("connected without credentials")
	}
	producer, err := nats.Connect(svc.NATSURL(), nats.UserInfo("shop", "shop-secret"), nats.CustomInboxPrefix("_INBOX.shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	pjs, _ := jetstream.New(producer)

	// Allowed: publishing work, and getting the outcome on a reply inbox.
	inbox := producer.NewInbox()
	sub, err := producer.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("bw.in.orders")
	m.Data = []byte(`{"id":"p-1"}`)
	m.Header.Set(headers.MsgID, "p-1")
	m.Header.Set(headers.ReplyTo, inbox)
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := pjs.PublishMsg(pctx, m); err != nil {
		t.Fatalf("producer publishing work: %v", err)
	}
	if res, err := sub.NextMsg(10 * time.Second); err != nil || res.Header.Get(headers.Outcome) != headers.OutcomeOK {
		t.Fatalf("producer's outcome: %v", err)
	}

	// Refused: the module store and the flags.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	c1, cancel1 := short()
	defer cancel1()
	if st, err := modulestore.Open(c1, pjs, modulestore.Options{}); err == nil {
		if _, err := st.Push(c1, "evil", wasmFile(t, "retry-constant"), nil, func(context.Context, []byte) (modulestore.Info, error) {
			return modulestore.Info{Kinds: []string{"retry"}, ABIVersion: 1}, nil
		}, "shop"); err == nil {
			t.Fatal("a producer uploaded a module")
		}
	}
	c2, cancel2 := short()
	defer cancel2()
	if kv, err := flagstore.Bucket(c2, pjs); err == nil {
		if err := flagstore.Set(c2, kv, "orders.enabled", "false"); err == nil {
			t.Fatal("a producer flipped a flag")
		}
	}
	if !svc.Flags().Enabled("orders", "orders") {
		t.Fatal("the route was switched off by a producer")
	}

	// The admin may.
	admin, err := nats.Connect(svc.NATSURL(), nats.UserInfo("ops", "ops-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	kv, err := flagstore.Bucket(ctx, ajs)
	if err != nil {
		t.Fatal(err)
	}
	if err := flagstore.Set(ctx, kv, "orders.enabled", "false"); err != nil {
		t.Fatalf("admin flipping a flag: %v", err)
	}
	waitUntil(t, "the admin's switch", func() bool { return !svc.Flags().Enabled("orders", "orders") })
}
