package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/headers"
)

// HandConfig configures the hand-written worker.
type HandConfig struct {
	// InStream (work-queue, file storage) holds InSubject; OutStream
	// (limits, file storage, 2 min duplicate window) holds OutSubject.
	// Both are created (or updated) at start.
	InStream, InSubject   string
	OutStream, OutSubject string
	// Durable names the pull consumer on InStream (default "hand").
	Durable string
	// TargetURL receives each payload as an HTTP POST.
	TargetURL string
	// Concurrency is how many messages are in flight at once (default 256).
	Concurrency int
	// Timeout bounds one HTTP call (default 10s); AckWait is the
	// consumer's (default 30s).
	Timeout, AckWait time.Duration
	// Client calls the target (default: a pooled client shaped like
	// Breakwater's host/target/http.go).
	Client *http.Client
}

// HandClient is the worker's default HTTP client: the same transport
// settings as Breakwater's HTTP target.
func HandClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// StartHandWorker runs what a team would write by hand with nats.go's
// jetstream package to do Breakwater's success-path JetStream work, and
// nothing more: a durable pull consumer on InStream; for each message (up
// to Concurrency at once, the slot taken before the next pull, as
// Breakwater does) an HTTP POST of the payload to TargetURL; on a 2xx, the
// response body published on OutSubject with Nats-Msg-Id
// "<durable>:<stream seq>" (Breakwater's outcome id) and Bw-Original-Id set
// to the input's Nats-Msg-Id, its PubAck awaited; then the input acked.
// A failed call is nak'ed (no retry policy, fallback, cache or stub: this
// is the success path). stop ends the worker and waits for its messages.
func StartHandWorker(ctx context.Context, js jetstream.JetStream, cfg HandConfig) (stop func(), err error) {
	if cfg.Durable == "" {
		cfg.Durable = "hand"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
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
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: cfg.InStream, Subjects: []string{cfg.InSubject},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage}); err != nil {
		return nil, fmt.Errorf("hand worker: stream %s: %w", cfg.InStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: cfg.OutStream, Subjects: []string{cfg.OutSubject},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		return nil, fmt.Errorf("hand worker: stream %s: %w", cfg.OutStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.InStream, jetstream.ConsumerConfig{Durable: cfg.Durable, FilterSubject: cfg.InSubject,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxAckPending: 65536})
	if err != nil {
		return nil, fmt.Errorf("hand worker: consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(cfg.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("hand worker: pull: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	slots := make(chan struct{}, cfg.Concurrency)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case slots <- struct{}{}:
			case <-wctx.Done():
				return
			}
			msg, err := it.Next()
			if err != nil {
				<-slots
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) || wctx.Err() != nil {
					return
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				handle(wctx, js, cfg, msg)
			}()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			it.Stop()
			<-done
			wg.Wait()
		})
	}, nil
}

func handle(ctx context.Context, js jetstream.JetStream, cfg HandConfig, msg jetstream.Msg) {
	body, err := post(ctx, cfg, msg.Data())
	if err != nil {
		_ = msg.Nak()
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return
	}
	out := nats.NewMsg(cfg.OutSubject)
	out.Data = body
	out.Header.Set(headers.MsgID, cfg.Durable+":"+strconv.FormatUint(meta.Sequence.Stream, 10))
	if id := msg.Headers().Get(headers.MsgID); id != "" {
		out.Header.Set(headers.OriginalID, id)
	}
	f, err := js.PublishMsgAsync(out)
	if err != nil {
		_ = msg.Nak()
		return
	}
	select {
	case <-f.Ok():
	case <-f.Err():
		_ = msg.Nak()
		return
	case <-ctx.Done():
		return
	}
	_ = msg.Ack()
}

func post(ctx context.Context, cfg HandConfig, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.TargetURL, bytesReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return body, nil
}
