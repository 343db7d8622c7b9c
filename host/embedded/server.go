package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures an embedded server.
type Options struct {
	Host     string // listen address for clients; default 127.0.0.1
	Port     int    // -1 picks a random free port
	StoreDir string // JetStream file storage; required
	MaxStore int64  // 0: server default
	Name     string // server name; default "breakwater"
	// Users, when set, turn on authentication with these accounts' permissions.
	Users []*server.User
	// NoAuthUser is who a client without credentials is (one of Users).
	NoAuthUser string
	// Logger receives the server's log lines (nil: silent).
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections.
	ReadyTimeout time.Duration
}

// Role permissions of embedded users.
const (
	RoleAdmin    = "admin"
	RoleProducer = "producer"
)

// NewUser returns a server user with role's permissions: admin may do
// everything; a producer gets ProducerPermissions for routes.
func NewUser(name, password, role string, routes []string) *server.User {
	u := &server.User{Username: name, Password: password}
	if role == RoleProducer {
		u.Permissions = ProducerPermissions(name, routes)
	}
	return u
}

// Start starts a nats-server with JetStream and waits until it accepts
// clients, ctx ends (a signal during start-up), or ReadyTimeout passes.
func Start(ctx context.Context, o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("embedded nats: store dir is empty: set nats.embedded.store_dir")
	}
	if err := os.MkdirAll(o.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded nats: store dir %s: %w", o.StoreDir, err)
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Name == "" {
		o.Name = "breakwater"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	opts := &server.Options{
		ServerName:             o.Name,
		Host:                   o.Host,
		Port:                   o.Port,
		JetStream:              true,
		StoreDir:               o.StoreDir,
		JetStreamMaxStore:      o.MaxStore,
		NoSigs:                 true,
		MaxPayload:             8 << 20,
		Users:                  o.Users,
		NoAuthUser:             o.NoAuthUser,
		DisableJetStreamBanner: true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(&slogAdapter{l: o.Logger.With("component", "nats-server")}, false, false, false)
	}
	go s.Start()
	deadline := time.Now().Add(o.ReadyTimeout)
	for !s.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			s.Shutdown()
			s.WaitForShutdown()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("embedded nats: start interrupted: %w", ctx.Err())
			}
			return nil, fmt.Errorf("embedded nats: not ready for connections within %v (port %d in use? store dir %s locked by another process?)", o.ReadyTimeout, o.Port, o.StoreDir)
		}
	}
	return s, nil
}

// slogAdapter routes nats-server logs to slog.
type slogAdapter struct{ l *slog.Logger }

// Noticef: the server's notices (its start-up banner, mostly) are debug
// lines; its warnings and errors keep their levels.
func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }

// Warnf: the server's "plaintext passwords" warning is about the runtime's
// own identities (random, in memory only) as much as the configured users,
// so it goes to debug; config validation is where users' passwords are
// discussed.
func (a *slogAdapter) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		a.l.Debug(msg)
		return
	}
	a.l.Warn(msg)
}
func (a *slogAdapter) Fatalf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
