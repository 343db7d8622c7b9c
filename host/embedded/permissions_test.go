package embedded_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/modulestore"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// conn connects as user and keeps the permission violations reported.
type conn struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []string
}

func connect(t *testing.T, srv *server.Server, user string) *conn {
	t.Helper()
	c := &conn{}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, "pw"), nats.CustomInboxPrefix("_BW_INBOX"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err.Error())
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, _ = jetstream.New(nc)
	return c
}

func (c *conn) violations() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.errs, "\n")
}

// TestLeastPrivilege: even if a reply subject got past validation, the
// worker and replies connections cannot purge or delete streams, create
// streams or write flags, and the replies connection cannot reach
// anything but the reply namespaces.
func TestLeastPrivilege(t *testing.T) {
	po := embedded.PermissionOptions{InboxPrefix: "_BW_INBOX", ReplySubjects: topology.ReplyNamespaces}
	srv, err := embedded.Start(context.Background(), embedded.Options{Port: -1, StoreDir: t.TempDir(), Users: []*server.User{
		{Username: "admin", Password: "pw"},
		{Username: "worker", Password: "pw", Permissions: embedded.WorkerPermissions(po)},
		{Username: "replies", Password: "pw", Permissions: embedded.RepliesPermissions(po)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := connect(t, srv, "admin")
	if err := topology.Ensure(ctx, admin.js, topology.Options{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.js.Publish(ctx, "bw.in.orders", []byte("work")); err != nil {
		t.Fatal(err)
	}
	if _, err := modulestore.Open(ctx, admin.js, modulestore.Options{}); err != nil {
		t.Fatal(err)
	}
	worker := connect(t, srv, "worker")
	replies := connect(t, srv, "replies")
	// The one module key a worker writes: a canary's withdrawal.
	workerStore, err := modulestore.Bind(ctx, worker.js, modulestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := workerStore.Withdraw(ctx, "policy", 1, 2, "breach rate", "test"); err != nil {
		t.Fatalf("the worker cannot withdraw a canary: %v", err)
	}

	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
	for name, attack := range map[string]func() error{
		"purge BW_IN": func() error {
			c, cancel := short()
			defer cancel()
			s, err := worker.js.Stream(c, topology.StreamIn)
			if err != nil {
				return err
			}
			return s.Purge(c)
		},
		"delete BW_DLQ": func() error {
			c, cancel := short()
			defer cancel()
			return worker.js.DeleteStream(c, topology.StreamDLQ)
		},
		"create a stream": func() error {
			c, cancel := short()
			defer cancel()
			_, err := worker.js.CreateStream(c, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
			return err
		},
		"write a flag": func() error {
			c, cancel := short()
			defer cancel()
			_, err := worker.js.Publish(c, "$KV."+topology.BucketFlags+".orders.enabled", []byte("false"))
			return err
		},
		"set a module rollout": func() error {
			c, cancel := short()
			defer cancel()
			_, err := worker.js.Publish(c, "$KV."+modulestore.MetaBucket+".rollout.policy", []byte(`{"canary":2,"percent":100}`))
			return err
		},
		"move a module's current version": func() error {
			c, cancel := short()
			defer cancel()
			_, err := worker.js.Publish(c, "$KV."+modulestore.MetaBucket+".current.policy", []byte("2"))
			return err
		},
		"delete a route consumer": func() error {
			c, cancel := short()
			defer cancel()
			return worker.js.DeleteConsumer(c, topology.StreamIn, "route_orders")
		},
	} {
		if err := attack(); err == nil {
			t.Errorf("worker could %s", name)
		}
	}
	// The replies connection publishes only to reply namespaces.
	for _, subj := range []string{"$JS.API.STREAM.PURGE." + topology.StreamIn, "$JS.API.STREAM.DELETE." + topology.StreamDLQ,
		"$KV." + topology.BucketFlags + ".orders.enabled", "bw.dlq.orders", "bw.out.orders", "bw.in.orders"} {
		if err := replies.nc.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := replies.nc.Publish("_INBOX.shop.1", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	_ = replies.nc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(replies.violations(), "Permissions Violation for Publish") < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v := replies.violations(); strings.Count(v, "Permissions Violation for Publish") < 6 || strings.Contains(v, "_INBOX.shop") {
		t.Errorf("replies connection violations:\n%s", v)
	}
	// Nothing changed: the work is still there, the streams are intact, no
	// flag was written, no dead letter or outcome forged.
	for stream, want := range map[string]uint64{topology.StreamIn: 1, topology.StreamDLQ: 0, topology.StreamOut: 0, "KV_" + topology.BucketFlags: 0} {
		s, err := admin.js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != want {
			t.Errorf("stream %s holds %d messages, want %d", stream, info.State.Msgs, want)
		}
	}
	if _, err := admin.js.Stream(ctx, "EVIL"); err == nil {
		t.Error("the worker created a stream")
	}
}
