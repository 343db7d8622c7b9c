package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/config"
	"github.com/breakwater-dev/breakwater/host/embedded"
	"github.com/breakwater-dev/breakwater/host/topology"
)

// links are the runtime's NATS connections, one per job, each with the
// least permission it needs (see docs/security.md).
type links struct {
	admin   *nats.Conn // streams, buckets, consumers: setup
	worker  *nats.Conn // processing messages
	replies *nats.Conn // producers' reply subjects only
}

func (l *links) all() []*nats.Conn {
	var out []*nats.Conn
	for _, c := range []*nats.Conn{l.worker, l.replies, l.admin} {
		if c != nil && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// permissionOptions derives what the runtime's permissions depend on.
func permissionOptions(cfg *config.Config) embedded.PermissionOptions {
	o := embedded.PermissionOptions{InboxPrefix: cfg.NATS.InboxPrefix, ReplySubjects: append([]string(nil), topology.ReplyNamespaces...)}
	for _, r := range cfg.Routes {
		for _, p := range r.ReplySubjects {
			if !slices.Contains(o.ReplySubjects, p) {
				o.ReplySubjects = append(o.ReplySubjects, p)
			}
		}
		for _, t := range r.Targets {
			if t.NATS != nil && !slices.Contains(o.TargetSubjects, t.NATS.Subject) {
				o.TargetSubjects = append(o.TargetSubjects, t.NATS.Subject)
			}
		}
	}
	return o
}

func randomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// connect starts the embedded server when no nats.url is configured, then
// opens the runtime's connections. An external server that is not
// reachable yet is retried with backoff for nats.connect_timeout.
func (s *Service) connect(ctx context.Context) error {
	cfg := s.cfg
	type identity struct{ user, password string }
	var admin, worker, replies identity
	var inProcess nats.Option
	url := cfg.NATS.URL
	if url == "" {
		if err := portFree(cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port); err != nil {
			return err
		}
		admin = identity{embedded.UserAdmin, randomPassword()}
		worker = identity{embedded.UserWorker, randomPassword()}
		replies = identity{embedded.UserReplies, randomPassword()}
		po := permissionOptions(cfg)
		users := []*server.User{
			{Username: admin.user, Password: admin.password},
			{Username: worker.user, Password: worker.password, Permissions: embedded.WorkerPermissions(po)},
			{Username: replies.user, Password: replies.password, Permissions: embedded.RepliesPermissions(po)},
		}
		noAuth := ""
		if len(cfg.NATS.Embedded.Users) == 0 {
			// No users configured: clients without credentials may do
			// everything, as before; the runtime's own connections are
			// still least-privilege.
			noAuth = embedded.UserAnonymous
			users = append(users, &server.User{Username: noAuth, Password: randomPassword()})
		}
		for _, u := range cfg.NATS.Embedded.Users {
			users = append(users, embedded.NewUser(u.User, u.Password, u.Role, u.Routes))
		}
		srv, err := embedded.Start(ctx, embedded.Options{
			Users:      users,
			NoAuthUser: noAuth,
			Host:       cfg.NATS.Embedded.Host,
			Port:       cfg.NATS.Embedded.Port,
			StoreDir:   cfg.NATS.Embedded.StoreDir,
			MaxStore:   cfg.NATS.Embedded.MaxStore,
			Logger:     s.log,
		})
		if err != nil {
			return err
		}
		s.srv = srv
		url = srv.ClientURL()
		inProcess = nats.InProcessServer(srv)
		s.log.Info("embedded NATS server with JetStream started", slog.String("url", url), slog.String("store_dir", cfg.NATS.Embedded.StoreDir))
	} else {
		admin = identity{cfg.NATS.User, cfg.NATS.Password}
		worker, replies = admin, admin
		if cfg.NATS.Worker.User != "" {
			worker = identity{cfg.NATS.Worker.User, cfg.NATS.Worker.Password}
			replies = worker
		}
		if cfg.NATS.Replies.User != "" {
			replies = identity{cfg.NATS.Replies.User, cfg.NATS.Replies.Password}
		}
		if worker == admin || replies == worker {
			s.log.Warn("least privilege is not in effect: set nats.worker and nats.replies to identities with the permissions in docs/security.md, so that a bug cannot turn the worker's rights against the streams")
		}
	}
	dial := func(role string, id identity) (*nats.Conn, error) {
		opts := []nats.Option{
			nats.Name("breakwater-" + role),
			nats.CustomInboxPrefix(cfg.NATS.InboxPrefix),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond),
			nats.Timeout(5 * time.Second),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					s.log.Warn("nats disconnected; reconnecting", slog.String("connection", role), slog.String("error", err.Error()))
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				s.log.Info("nats reconnected", slog.String("connection", role), slog.String("url", nc.ConnectedUrl()))
			}),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				s.log.Error("nats error", slog.String("connection", role), slog.String("error", err.Error()))
			}),
			nats.ClosedHandler(func(nc *nats.Conn) {
				if !s.closing.Load() {
					s.fail(fmt.Errorf("NATS connection %q closed for good (last error: %v); exiting so that a supervisor restarts the runtime", role, nc.LastError()))
				}
			}),
		}
		if id.user != "" {
			opts = append(opts, nats.UserInfo(id.user, id.password))
		}
		if inProcess != nil {
			opts = append(opts, inProcess)
		}
		return connectWithRetry(ctx, s.log, url, role, cfg.NATS.ConnectTimeout, opts)
	}
	var err error
	if s.links.admin, err = dial("admin", admin); err != nil {
		return err
	}
	if s.links.worker, err = dial("worker", worker); err != nil {
		return err
	}
	if s.links.replies, err = dial("replies", replies); err != nil {
		return err
	}
	s.nc = s.links.worker
	if s.adminJS, err = jetstream.New(s.links.admin); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if s.js, err = jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(cfg.Streams.PublishMaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.Streams.BrokerTimeout)); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// connectWithRetry connects, retrying with backoff (a log line per
// attempt) until timeout or ctx ends: containers start in any order.
func connectWithRetry(ctx context.Context, log *slog.Logger, url, role string, timeout time.Duration, opts []nats.Option) (*nats.Conn, error) {
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(250*time.Millisecond), backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(timeout))
	attempt := 0
	var nc *nats.Conn
	err := backoff.RetryNotify(func() error {
		attempt++
		var err error
		nc, err = nats.Connect(url, opts...)
		if err != nil && (errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization")) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		log.Warn("NATS not reachable yet; retrying", slog.String("connection", role), slog.String("url", url), slog.Int("attempt", attempt),
			slog.Duration("retry_in", wait), slog.String("error", err.Error()))
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to NATS at %s: %w", url, ctx.Err())
		}
		return nil, fmt.Errorf("connecting to NATS at %s (%s, %d attempts over up to %v): %w (is the server running? check nats.url, credentials and nats.connect_timeout)", url, role, attempt, timeout, err)
	}
	return nc, nil
}

// portFree fails at once, naming the address, when the embedded server's
// port is taken: the server itself would only time out.
func portFree(host string, port int) error {
	if port <= 0 {
		return nil
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("nats.embedded.port: %s is not free (%v): is another runtime running? stop it or set nats.embedded.port", addr, err)
	}
	return ln.Close()
}
