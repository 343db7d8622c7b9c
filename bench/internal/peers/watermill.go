package peers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// WatermillConfig configures the Watermill peer.
type WatermillConfig struct {
	// Streams (file storage) and their subjects, which are Watermill's
	// topics: InStream (work queue) holds InTopic, OutStream (limits, 2 min
	// duplicate window) OutTopic, PoisonStream PoisonTopic. All are created
	// (or updated) at start.
	InStream, InTopic         string
	OutStream, OutTopic       string
	PoisonStream, PoisonTopic string
	// Durable names the pull consumer on InStream (default "watermill").
	Durable string
	// TargetURL receives each payload as an HTTP POST.
	TargetURL string
	// Concurrency is how many messages are in flight at once (default
	// 256): that many router handlers share the durable consumer, since
	// watermill-nats' JetStream subscriber holds one message at a time per
	// subscription (see StartWatermill).
	Concurrency int
	// Prefetch is each subscription's PullMaxMessages (default 2).
	Prefetch int
	// Retry: MaxAttempts attempts in all (Breakwater's max_attempts;
	// default 3), with Backoff (default DefaultBackoff).
	MaxAttempts int
	Backoff     BackoffConfig
	// Timeout bounds one HTTP call (default 10s); AckWait is the
	// consumer's and the subscriber's (default 30s).
	Timeout, AckWait time.Duration
	Client           *http.Client
	Logger           watermill.LoggerAdapter // default: none
}

// Metadata keys the peer's unmarshaler adds to each message.
const (
	wmInID  = "bw_in_id"
	wmInSeq = "bw_in_seq"
)

// idUnmarshaler is watermill-nats' DefaultUnmarshaler plus the input's
// Nats-Msg-Id and stream sequence as metadata (the default drops the
// former), so the result can carry the same ids as Breakwater's outcome.
type idUnmarshaler struct{ wmjs.DefaultUnmarshaler }

func (u idUnmarshaler) Unmarshal(msg jetstream.Msg) (*message.Message, error) {
	m, err := u.DefaultUnmarshaler.Unmarshal(msg)
	if err != nil {
		return nil, err
	}
	if id := msg.Headers().Get(nats.MsgIdHdr); id != "" {
		m.Metadata.Set(wmInID, id)
		if m.UUID == "" {
			m.UUID = id
		}
	}
	if meta, err := msg.Metadata(); err == nil {
		m.Metadata.Set(wmInSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	return m, nil
}

// StartWatermill runs Watermill's message router over watermill-nats'
// JetStream Pub/Sub (pkg/jetstream of watermill-nats v2.1, the one built
// on nats.go's jetstream package and pull consumers, like Breakwater):
// Concurrency handlers subscribe to InTopic through one durable,
// explicit-ack pull consumer on InStream; each handler POSTs the payload to
// TargetURL and returns the response body as a message for OutTopic
// (published by the router, PubAck awaited, Nats-Msg-Id
// "<durable>:<stream seq>" and Bw-Original-Id as Breakwater's outcome),
// then the input is acked. Router middleware: PoisonQueue(PoisonTopic)
// outside Retry{MaxRetries: MaxAttempts−1, InitialInterval, Multiplier,
// MaxInterval, RandomizationFactor: Backoff}, so a message is retried in
// process and goes to the poison topic once its attempts are spent.
//
// Tuned for throughput: AckAsync (a plain ack, as Breakwater and the hand
// worker; the default is a double ack, one more round trip), a logger
// that discards (the default logs every message at Info), and, because
// the subscriber hands a subscription's messages over one at a time
// (nats.go calls a consumer's callback serially, and watermill-nats holds
// it until the message is acked), Concurrency subscriptions, each
// prefetching Prefetch messages.
func StartWatermill(ctx context.Context, natsURL string, cfg WatermillConfig) (stop func(), err error) {
	if cfg.Durable == "" {
		cfg.Durable = "watermill"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Backoff == (BackoffConfig{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = HandClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NopLogger{}
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, fmt.Errorf("watermill: %w", err)
	}
	closeAll := []func(){nc.Close}
	fail := func(err error) (func(), error) {
		for i := len(closeAll) - 1; i >= 0; i-- {
			closeAll[i]()
		}
		return nil, fmt.Errorf("watermill: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	for _, sc := range []jetstream.StreamConfig{
		{Name: cfg.InStream, Subjects: []string{cfg.InTopic}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage},
		{Name: cfg.OutStream, Subjects: []string{cfg.OutTopic}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute},
		{Name: cfg.PoisonStream, Subjects: []string{cfg.PoisonTopic}, Storage: jetstream.FileStorage},
	} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fail(fmt.Errorf("stream %s: %w", sc.Name, err))
		}
	}
	consumerCfg := jetstream.ConsumerConfig{Durable: cfg.Durable, FilterSubject: cfg.InTopic,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxAckPending: 65536}
	if _, err := js.CreateOrUpdateConsumer(ctx, cfg.InStream, consumerCfg); err != nil {
		return fail(fmt.Errorf("consumer: %w", err))
	}

	// The publisher publishes a topic on the subject named by its stream
	// config's Name: the topic itself.
	topicAsSubject := func(topic string) jetstream.StreamConfig { return jetstream.StreamConfig{Name: topic} }
	pub, err := wmjs.NewPublisher(wmjs.PublisherConfig{Conn: nc, Logger: cfg.Logger, ConfigureStream: topicAsSubject})
	if err != nil {
		return fail(err)
	}
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:           nc,
		Logger:         cfg.Logger,
		AckWaitTimeout: cfg.AckWait,
		AckAsync:       true,
		Unmarshaler:    idUnmarshaler{},
		ConsumeOptions: []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(cfg.Prefetch)},
		ResourceInitializer: func(ctx context.Context, js jetstream.JetStream, topic string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
			c, err := js.Consumer(ctx, cfg.InStream, cfg.Durable)
			return c, nil, err
		},
	})
	if err != nil {
		return fail(err)
	}
	closeAll = append(closeAll, func() { _ = sub.Close() })

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, cfg.Logger)
	if err != nil {
		return fail(err)
	}
	poison, err := middleware.PoisonQueue(pub, cfg.PoisonTopic)
	if err != nil {
		return fail(err)
	}
	router.AddMiddleware(
		poison,
		middleware.Retry{
			MaxRetries:          cfg.MaxAttempts - 1,
			InitialInterval:     cfg.Backoff.Initial,
			MaxInterval:         cfg.Backoff.Max,
			Multiplier:          cfg.Backoff.Multiplier,
			RandomizationFactor: cfg.Backoff.Jitter,
			Logger:              cfg.Logger,
		}.Middleware,
	)
	handler := func(msg *message.Message) ([]*message.Message, error) {
		body, err := post(msg.Context(), HandConfig{TargetURL: cfg.TargetURL, Timeout: cfg.Timeout, Client: cfg.Client}, msg.Payload)
		if err != nil {
			return nil, err
		}
		out := message.NewMessage(msg.UUID, body)
		out.Metadata.Set(headers.MsgID, cfg.Durable+":"+msg.Metadata.Get(wmInSeq))
		if id := msg.Metadata.Get(wmInID); id != "" {
			out.Metadata.Set(headers.OriginalID, id)
		}
		return []*message.Message{out}, nil
	}
	for i := range cfg.Concurrency {
		router.AddHandler("h"+strconv.Itoa(i), cfg.InTopic, sub, cfg.OutTopic, pub, handler)
	}
	rctx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(rctx) }()
	select {
	case <-router.Running():
	case err := <-runErr:
		cancel()
		return fail(fmt.Errorf("router: %v", err))
	case <-time.After(30 * time.Second):
		cancel()
		_ = router.Close()
		return fail(fmt.Errorf("router not running after 30s"))
	}
	closeAll = append(closeAll, func() { cancel(); _ = router.Close(); <-runErr })
	done := false
	return func() {
		if done {
			return
		}
		done = true
		for i := len(closeAll) - 1; i >= 0; i-- {
			closeAll[i]()
		}
	}, nil
}
