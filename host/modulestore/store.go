package modulestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/topology"
)

// Meta describes one stored module version.
type Meta struct {
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	SHA256     string    `json:"sha256"`
	Size       int       `json:"size"`
	Kinds      []string  `json:"kinds"`
	ABIVersion int       `json:"abi_version"`
	Signer     string    `json:"signer,omitempty"`
	Signature  []byte    `json:"-"`
	UploadedAt time.Time `json:"uploaded_at"`
	Uploader   string    `json:"uploader,omitempty"`
	Current    bool      `json:"current"`
}

// VersionString is "v<N>".
func (m *Meta) VersionString() string { return "v" + strconv.Itoa(m.Version) }

// Info is what validation reports about a module.
type Info struct {
	Kinds      []string
	ABIVersion int
}

// Validator validates a module before it is stored (the engine's dry run).
type Validator func(ctx context.Context, wasm []byte) (Info, error)

// RejectedError is a push refused: nothing was stored.
type RejectedError struct {
	Name string
	Err  error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("module %q rejected, nothing stored: %v", e.Name, e.Err)
}
func (e *RejectedError) Unwrap() error { return e.Err }

// ErrNotFound is returned (wrapped) for unknown modules and versions.
var ErrNotFound = errors.New("module not found")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Options configure Open.
type Options struct {
	Replicas int
	// TrustedKeys turns on secure mode: only modules signed by one of these
	// nkey public keys are stored and loaded.
	TrustedKeys []string
}

// Store is the module store. Safe for concurrent use.
type Store struct {
	obj jetstream.ObjectStore
	o   Options
}

// Open creates or binds the bw_modules bucket.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: topology.BucketModules, Description: "Breakwater policy modules", Storage: jetstream.FileStorage, Replicas: max(o.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("module store %s: %w", topology.BucketModules, err)
	}
	return &Store{obj: obj, o: o}, nil
}

// Secure reports whether the store runs in secure mode.
func (s *Store) Secure() bool { return len(s.o.TrustedKeys) > 0 }

func versionObject(name string, v int) string { return fmt.Sprintf("%s/v%d", name, v) }
func currentObject(name string) string        { return name + "/current" }

// CheckName validates a module name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("module name %q: use 1-64 lowercase letters, digits, - and _, starting with a letter or digit", name)
	}
	return nil
}

// Push validates wasm, checks its signature (secure mode), and stores it as
// the next version of name, which becomes current.
func (s *Store) Push(ctx context.Context, name string, wasm []byte, sig *Signature, validate Validator, uploader string) (*Meta, error) {
	if err := CheckName(name); err != nil {
		return nil, &RejectedError{Name: name, Err: err}
	}
	if sig != nil || s.Secure() {
		if err := Verify(wasm, sig, s.o.TrustedKeys); err != nil {
			return nil, &RejectedError{Name: name, Err: err}
		}
	}
	info, err := validate(ctx, wasm)
	if err != nil {
		return nil, &RejectedError{Name: name, Err: err}
	}
	versions, err := s.Versions(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	next := 1
	if len(versions) > 0 {
		next = versions[len(versions)-1].Version + 1
	}
	sum := sha256.Sum256(wasm)
	meta := &Meta{Name: name, Version: next, SHA256: hex.EncodeToString(sum[:]), Size: len(wasm), Kinds: info.Kinds, ABIVersion: info.ABIVersion,
		UploadedAt: time.Now().UTC(), Uploader: uploader}
	md := map[string]string{
		"sha256": meta.SHA256, "kinds": strings.Join(info.Kinds, ","), "abi_version": strconv.Itoa(info.ABIVersion),
		"uploaded_at": meta.UploadedAt.Format(time.RFC3339Nano), "uploader": uploader,
	}
	if sig != nil {
		meta.Signer, meta.Signature = sig.PublicKey, sig.Sig
		md["signer"], md["signature"] = sig.PublicKey, base64.StdEncoding.EncodeToString(sig.Sig)
	}
	if _, err := s.obj.Put(ctx, jetstream.ObjectMeta{Name: versionObject(name, next), Metadata: md}, bytes.NewReader(wasm)); err != nil {
		return nil, fmt.Errorf("module %q: storing version %d: %w", name, next, err)
	}
	if err := s.setCurrent(ctx, name, next); err != nil {
		return nil, err
	}
	meta.Current = true
	return meta, nil
}

func (s *Store) setCurrent(ctx context.Context, name string, v int) error {
	if _, err := s.obj.PutBytes(ctx, currentObject(name), []byte(strconv.Itoa(v))); err != nil {
		return fmt.Errorf("module %q: making version %d current: %w", name, v, err)
	}
	return nil
}

// Current returns the version in use of name.
func (s *Store) Current(ctx context.Context, name string) (int, error) {
	b, err := s.obj.GetBytes(ctx, currentObject(name))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, fmt.Errorf("module %q: %w (see `runtime module list`)", name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("module %q: %w", name, err)
	}
	v, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, fmt.Errorf("module %q: corrupt current pointer %q", name, b)
	}
	return v, nil
}

// Versions lists name's stored versions, oldest first.
func (s *Store) Versions(ctx context.Context, name string) ([]*Meta, error) {
	all, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, fmt.Errorf("module %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("module store: %w", err)
	}
	cur, _ := s.Current(ctx, name)
	var out []*Meta
	for _, o := range all {
		n, v, ok := parseVersionObject(o.Name)
		if !ok || n != name {
			continue
		}
		m := metaOf(n, v, o)
		m.Current = v == cur
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("module %q: %w", name, ErrNotFound)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// List returns the current version of every module.
func (s *Store) List(ctx context.Context) ([]*Meta, error) {
	all, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("module store: %w", err)
	}
	var out []*Meta
	for _, o := range all {
		name, ok := strings.CutSuffix(o.Name, "/current")
		if !ok {
			continue
		}
		v, err := s.Current(ctx, name)
		if err != nil {
			continue
		}
		info, err := s.obj.GetInfo(ctx, versionObject(name, v))
		if err != nil {
			continue
		}
		m := metaOf(name, v, info)
		m.Current = true
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns version (0: current) of name, its sha256 checked and, in
// secure mode, its signature verified.
func (s *Store) Get(ctx context.Context, name string, version int) (*Meta, []byte, error) {
	if version == 0 {
		var err error
		if version, err = s.Current(ctx, name); err != nil {
			return nil, nil, err
		}
	}
	res, err := s.obj.Get(ctx, versionObject(name, version))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil, fmt.Errorf("module %q version %d: %w", name, version, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("module %q version %d: %w", name, version, err)
	}
	defer res.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res); err != nil {
		return nil, nil, fmt.Errorf("module %q version %d: reading: %w", name, version, err)
	}
	info, err := res.Info()
	if err != nil {
		return nil, nil, err
	}
	m := metaOf(name, version, info)
	wasm := buf.Bytes()
	sum := sha256.Sum256(wasm)
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, nil, fmt.Errorf("module %q version %d: stored bytes do not match their sha256 %s: refusing to load", name, version, m.SHA256)
	}
	if s.Secure() {
		var sig *Signature
		if m.Signer != "" {
			sig = &Signature{PublicKey: m.Signer, Sig: m.Signature}
		}
		if err := Verify(wasm, sig, s.o.TrustedKeys); err != nil {
			return nil, nil, fmt.Errorf("module %q version %d: %w", name, version, err)
		}
	}
	return m, wasm, nil
}

// Rollback makes version to (0: the one before the current) current.
func (s *Store) Rollback(ctx context.Context, name string, to int) (*Meta, error) {
	versions, err := s.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	cur, err := s.Current(ctx, name)
	if err != nil {
		return nil, err
	}
	var target *Meta
	for _, m := range versions {
		if (to == 0 && m.Version < cur) || (to != 0 && m.Version == to) {
			target = m
		}
	}
	if target == nil {
		if to == 0 {
			return nil, fmt.Errorf("module %q: no version before v%d to roll back to", name, cur)
		}
		return nil, fmt.Errorf("module %q version %d: %w", name, to, ErrNotFound)
	}
	if err := s.setCurrent(ctx, name, target.Version); err != nil {
		return nil, err
	}
	target.Current = true
	return target, nil
}

// Remove deletes every version of name.
func (s *Store) Remove(ctx context.Context, name string) error {
	versions, err := s.Versions(ctx, name)
	if err != nil {
		return err
	}
	for _, m := range versions {
		if err := s.obj.Delete(ctx, versionObject(name, m.Version)); err != nil {
			return fmt.Errorf("module %q: removing v%d: %w", name, m.Version, err)
		}
	}
	if err := s.obj.Delete(ctx, currentObject(name)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("module %q: %w", name, err)
	}
	return nil
}

// Watch sends the name of a module whenever its current version changes
// (push, rollback, remove), until ctx ends.
func (s *Store) Watch(ctx context.Context) (<-chan string, error) {
	w, err := s.obj.Watch(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("module store: watch: %w", err)
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case info, ok := <-w.Updates():
				if !ok {
					return
				}
				if info == nil {
					continue
				}
				if name, ok := strings.CutSuffix(info.Name, "/current"); ok {
					select {
					case out <- name:
					case <-ctx.Done():
						return
					}
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func parseVersionObject(obj string) (string, int, bool) {
	name, v, ok := strings.Cut(obj, "/v")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(v)
	return name, n, err == nil
}

func metaOf(name string, v int, o *jetstream.ObjectInfo) *Meta {
	md := o.Metadata
	m := &Meta{Name: name, Version: v, SHA256: md["sha256"], Size: int(o.Size), Signer: md["signer"], Uploader: md["uploader"]}
	if k := md["kinds"]; k != "" {
		m.Kinds = strings.Split(k, ",")
	}
	m.ABIVersion, _ = strconv.Atoi(md["abi_version"])
	m.UploadedAt, _ = time.Parse(time.RFC3339Nano, md["uploaded_at"])
	if s := md["signature"]; s != "" {
		m.Signature, _ = base64.StdEncoding.DecodeString(s)
	}
	return m
}
