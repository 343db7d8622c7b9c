package modulestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/breakwater-dev/breakwater/host/topology"
)

// MetaBucket is the KV bucket holding, per module, the version counter and
// the current pointer, and the trust policy. Every change to it is a
// compare-and-set on the key's revision.
const MetaBucket = "bw_modules_meta"

// Keys of MetaBucket.
const (
	currentPrefix = "current." // current.<name>: the version in use ("3")
	allocPrefix   = "alloc."   // alloc.<name>: the last version handed out
	trustKey      = "trust"    // the trust policy (JSON TrustPolicy)
)

// casAttempts bounds the compare-and-set retries of one operation.
const casAttempts = 30

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
	// Warnings are what validation corrected rather than refused.
	Warnings []string
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

// ErrConflict is returned (wrapped, as a *ConflictError) when another client
// kept changing the same key while an operation retried its
// compare-and-set: nothing was overwritten; try again.
var ErrConflict = errors.New("concurrent change in the module store")

// ConflictError is an operation that lost its compare-and-set Attempts
// times in a row. errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Name     string // module name; "" for the trust policy
	Op       string // what was being done
	Attempts int
}

func (e *ConflictError) Error() string {
	what := "trust policy"
	if e.Name != "" {
		what = fmt.Sprintf("module %q", e.Name)
	}
	return fmt.Sprintf("%s: %s: %v: gave up after %d attempts (other clients were changing it at the same time); nothing was overwritten, try again",
		what, e.Op, ErrConflict, e.Attempts)
}
func (e *ConflictError) Unwrap() error { return ErrConflict }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Options configure Open.
type Options struct {
	Replicas int
	// TrustedKeys are nkey public keys merged into the stored trust policy
	// at Open (adding keys is safe; it never removes any). Once the stored
	// policy names a key, the store is in secure mode for every client,
	// whatever its own TrustedKeys: only modules signed by a trusted key
	// are stored, made current and loaded. Removing keys takes an explicit
	// UntrustKey.
	TrustedKeys []string
}

// Store is the module store. Safe for concurrent use.
type Store struct {
	obj jetstream.ObjectStore
	kv  jetstream.KeyValue
	o   Options
}

// Open creates or binds the bw_modules object store and the
// bw_modules_meta KV bucket, moves version pointers written by older
// releases (objects "<name>/current") into the KV bucket, and merges
// o.TrustedKeys into the stored trust policy.
// Bind opens the store's existing buckets for reading (Get, Versions,
// List, Watch, Policy) without creating or changing anything: for a
// connection that may only read them (the runtime's worker). Writes
// through a bound store fail with the server's permission error.
func Bind(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	obj, err := js.ObjectStore(ctx, topology.BucketModules)
	if err != nil {
		return nil, fmt.Errorf("module store %s: %w", topology.BucketModules, err)
	}
	kv, err := js.KeyValue(ctx, MetaBucket)
	if err != nil {
		return nil, fmt.Errorf("module store %s: %w", MetaBucket, err)
	}
	return &Store{obj: obj, kv: kv, o: o}, nil
}

func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	obj, err := topology.CreateOrUpdateObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket: topology.BucketModules, Description: "Breakwater policy modules", Storage: jetstream.FileStorage, Replicas: max(o.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("module store %s: %w", topology.BucketModules, err)
	}
	kv, err := topology.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: MetaBucket, Description: "Breakwater policy modules: version counters, current versions, trust policy",
		History: 5, Storage: jetstream.FileStorage, Replicas: max(o.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("module store %s: %w", MetaBucket, err)
	}
	s := &Store{obj: obj, kv: kv, o: o}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if len(o.TrustedKeys) > 0 {
		if _, err := s.updatePolicy(ctx, "merging modules.trusted_keys", func(p *TrustPolicy) error {
			for _, k := range o.TrustedKeys {
				if err := checkKey(k); err != nil {
					return err
				}
				p.add(k)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// migrate moves "<name>/current" objects (older releases) into the KV
// bucket. A pointer already in the KV bucket wins.
func (s *Store) migrate(ctx context.Context) error {
	all, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("module store: %w", err)
	}
	for _, o := range all {
		name, ok := strings.CutSuffix(o.Name, "/current")
		if !ok || CheckName(name) != nil {
			continue
		}
		b, err := s.obj.GetBytes(ctx, o.Name)
		if err != nil {
			continue
		}
		if _, err := strconv.Atoi(string(b)); err != nil {
			continue
		}
		if _, err := s.kv.Create(ctx, currentPrefix+name, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("module %q: moving the current pointer to %s: %w", name, MetaBucket, err)
		}
		_ = s.obj.Delete(ctx, o.Name)
	}
	return nil
}

// Secure reports whether the stored trust policy names any key (secure
// mode), reading it from the bucket. When the bucket cannot be read it
// answers from the keys given to Open.
func (s *Store) Secure() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := s.Policy(ctx)
	if err != nil {
		return len(s.o.TrustedKeys) > 0
	}
	return p.Secure()
}

func versionObject(name string, v int) string { return fmt.Sprintf("%s/v%d", name, v) }

// CheckName validates a module name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("module name %q: use 1-64 lowercase letters, digits, - and _, starting with a letter or digit", name)
	}
	return nil
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// cas runs f until it does not fail with a revision conflict, at most
// casAttempts times, with a short random pause between attempts.
func cas(ctx context.Context, name, op string, f func() error) error {
	for i := range casAttempts {
		err := f()
		if !isConflict(err) {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(min(i+1, 10)) * int64(3*time.Millisecond)))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return fmt.Errorf("module %q: %s: %w", name, op, ctx.Err())
		}
	}
	return &ConflictError{Name: name, Op: op, Attempts: casAttempts}
}

// Push validates wasm, checks its signature against the stored trust
// policy, and stores it as the next version of name. The version is
// reserved with a compare-and-set on the module's counter before the object
// is written, and an existing object is never overwritten, so concurrent
// pushes get distinct versions (or a *ConflictError). The new version
// becomes current unless a newer one already is (a concurrent push that
// finished first): Meta.Current says which.
func (s *Store) Push(ctx context.Context, name string, wasm []byte, sig *Signature, validate Validator, uploader string) (*Meta, error) {
	if err := CheckName(name); err != nil {
		return nil, &RejectedError{Name: name, Err: err}
	}
	pol, err := s.Policy(ctx)
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", name, err)
	}
	if sig != nil || pol.Secure() {
		if err := Verify(wasm, sig, pol.Keys); err != nil {
			return nil, &RejectedError{Name: name, Err: err}
		}
	}
	info, err := validate(ctx, wasm)
	if err != nil {
		return nil, &RejectedError{Name: name, Err: err}
	}
	next, err := s.reserve(ctx, name)
	if err != nil {
		return nil, err
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
	// The version is ours; an object under its name was written around the
	// counter (an older release): leave it alone.
	if exists, err := s.objectExists(ctx, name, next); err != nil {
		return nil, err
	} else if exists {
		return nil, fmt.Errorf("module %q: version %d is already stored (written by a client that does not reserve versions); not overwriting it: %w", name, next, ErrConflict)
	}
	if _, err := s.obj.Put(ctx, jetstream.ObjectMeta{Name: versionObject(name, next), Metadata: md}, bytes.NewReader(wasm)); err != nil {
		return nil, fmt.Errorf("module %q: storing version %d: %w", name, next, err)
	}
	if meta.Current, err = s.advanceCurrent(ctx, name, next); err != nil {
		return nil, fmt.Errorf("module %q: version %d stored but not made current: %w", name, next, err)
	}
	return meta, nil
}

func (s *Store) objectExists(ctx context.Context, name string, v int) (bool, error) {
	_, err := s.obj.GetInfo(ctx, versionObject(name, v))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("module %q version %d: %w", name, v, err)
	}
}

// reserve hands out the next version of name: a compare-and-set on
// alloc.<name>. The counter starts after the highest stored version and
// skips versions whose object exists.
func (s *Store) reserve(ctx context.Context, name string) (int, error) {
	var v int
	err := cas(ctx, name, "reserving a version", func() error {
		var last int
		var rev uint64
		e, err := s.kv.Get(ctx, allocPrefix+name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if last, err = s.highestVersion(ctx, name); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("module %q: reading the version counter: %w", name, err)
		default:
			rev = e.Revision()
			if last, err = strconv.Atoi(string(e.Value())); err != nil {
				return fmt.Errorf("module %q: corrupt version counter %q in %s", name, e.Value(), MetaBucket)
			}
		}
		v = last + 1
		for range 1000 {
			exists, err := s.objectExists(ctx, name, v)
			if err != nil {
				return err
			}
			if !exists {
				break
			}
			v++
		}
		val := []byte(strconv.Itoa(v))
		if rev == 0 {
			_, err = s.kv.Create(ctx, allocPrefix+name, val)
		} else {
			_, err = s.kv.Update(ctx, allocPrefix+name, val, rev)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// highestVersion is the highest stored version of name (0: none).
func (s *Store) highestVersion(ctx context.Context, name string) (int, error) {
	all, err := s.obj.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("module store: %w", err)
	}
	h := 0
	for _, o := range all {
		if n, v, ok := parseVersionObject(o.Name); ok && n == name {
			h = max(h, v)
		}
	}
	return h, nil
}

// currentEntry reads current.<name>: the version and the key's revision
// (0, 0 when there is none).
func (s *Store) currentEntry(ctx context.Context, name string) (int, uint64, error) {
	e, err := s.kv.Get(ctx, currentPrefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("module %q: reading the current version: %w", name, err)
	}
	v, err := strconv.Atoi(string(e.Value()))
	if err != nil {
		return 0, 0, fmt.Errorf("module %q: corrupt current pointer %q", name, e.Value())
	}
	return v, e.Revision(), nil
}

// setCurrent moves current.<name> from revision rev (0: no pointer) to v.
func (s *Store) setCurrent(ctx context.Context, name string, v int, rev uint64) error {
	val := []byte(strconv.Itoa(v))
	var err error
	if rev == 0 {
		_, err = s.kv.Create(ctx, currentPrefix+name, val)
	} else {
		_, err = s.kv.Update(ctx, currentPrefix+name, val, rev)
	}
	return err
}

// advanceCurrent makes v current unless a newer version already is.
func (s *Store) advanceCurrent(ctx context.Context, name string, v int) (bool, error) {
	made := false
	err := cas(ctx, name, fmt.Sprintf("making version %d current", v), func() error {
		cur, rev, err := s.currentEntry(ctx, name)
		if err != nil {
			return err
		}
		if cur >= v {
			made = false
			return nil
		}
		if err := s.setCurrent(ctx, name, v, rev); err != nil {
			return err
		}
		made = true
		return nil
	})
	return made, err
}

// Current returns the version in use of name.
func (s *Store) Current(ctx context.Context, name string) (int, error) {
	v, rev, err := s.currentEntry(ctx, name)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return 0, fmt.Errorf("module %q: %w (see `runtime module list`)", name, ErrNotFound)
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
	cur, _, _ := s.currentEntry(ctx, name)
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
	kl, err := s.kv.ListKeysFiltered(ctx, currentPrefix+"*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("module store: %w", err)
	}
	var names []string
	for k := range kl.Keys() {
		names = append(names, strings.TrimPrefix(k, currentPrefix))
	}
	var out []*Meta
	for _, name := range names {
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

// Get returns version (0: current) of name, its sha256 checked and, when
// the stored trust policy is in secure mode, its signature verified.
func (s *Store) Get(ctx context.Context, name string, version int) (*Meta, []byte, error) {
	pol, err := s.Policy(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("module %q: %w", name, err)
	}
	if version == 0 {
		if version, err = s.Current(ctx, name); err != nil {
			return nil, nil, err
		}
	}
	return s.get(ctx, name, version, pol)
}

func (s *Store) get(ctx context.Context, name string, version int, pol *TrustPolicy) (*Meta, []byte, error) {
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
		return nil, nil, fmt.Errorf("module %q version %d: %w", name, version, err)
	}
	m := metaOf(name, version, info)
	wasm := buf.Bytes()
	sum := sha256.Sum256(wasm)
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, nil, fmt.Errorf("module %q version %d: %w: stored bytes do not match their sha256 %s: refusing to load", name, version, ErrCorrupt, m.SHA256)
	}
	if pol.Secure() {
		var sig *Signature
		if m.Signer != "" {
			sig = &Signature{PublicKey: m.Signer, Sig: m.Signature}
		}
		if err := Verify(wasm, sig, pol.Keys); err != nil {
			return nil, nil, fmt.Errorf("module %q version %d: %w", name, version, err)
		}
	}
	return m, wasm, nil
}

// ErrCorrupt is returned (wrapped) by Get for a version whose bytes do not
// match their recorded sha256.
var ErrCorrupt = errors.New("module bytes corrupt")

// Rollback makes version to (0: the newest one before the current)
// current, with a compare-and-set on the current pointer. The target is
// read back first: its sha256 must match and, in secure mode (stored
// policy), its signature must verify, or the rollback is refused.
func (s *Store) Rollback(ctx context.Context, name string, to int) (*Meta, error) {
	pol, err := s.Policy(ctx)
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", name, err)
	}
	var target *Meta
	checked := map[int]bool{}
	err = cas(ctx, name, "rolling back", func() error {
		cur, rev, err := s.currentEntry(ctx, name)
		if err != nil {
			return err
		}
		if rev == 0 {
			return fmt.Errorf("module %q: %w (see `runtime module list`)", name, ErrNotFound)
		}
		versions, err := s.Versions(ctx, name)
		if err != nil {
			return err
		}
		target = nil
		for _, m := range versions {
			if (to == 0 && m.Version < cur) || (to != 0 && m.Version == to) {
				target = m
			}
		}
		if target == nil {
			if to == 0 {
				return fmt.Errorf("module %q: no version before v%d to roll back to", name, cur)
			}
			return fmt.Errorf("module %q version %d: %w", name, to, ErrNotFound)
		}
		if !checked[target.Version] {
			if _, _, err := s.get(ctx, name, target.Version, pol); err != nil {
				return fmt.Errorf("refusing to roll back: %w", err)
			}
			checked[target.Version] = true
		}
		return s.setCurrent(ctx, name, target.Version, rev)
	})
	if err != nil {
		return nil, err
	}
	target.Current = true
	return target, nil
}

// Remove deletes every version of name: first the current pointer (a
// compare-and-set delete, so instances stop following it at once), then
// the objects. The version counter is kept, so a later push of the same
// name never reuses a version number.
func (s *Store) Remove(ctx context.Context, name string) error {
	versions, verr := s.Versions(ctx, name)
	if verr != nil && !errors.Is(verr, ErrNotFound) {
		return verr
	}
	had := false
	err := cas(ctx, name, "removing", func() error {
		_, rev, err := s.currentEntry(ctx, name)
		if err != nil || rev == 0 {
			return err
		}
		had = true
		return s.kv.Delete(ctx, currentPrefix+name, jetstream.LastRevision(rev))
	})
	if err != nil {
		return err
	}
	if !had && len(versions) == 0 {
		return verr
	}
	// Its rollout goes with it: a later push of the name starts clean.
	for _, k := range []string{rolloutPrefix + name, withdrawnPrefix + name} {
		if err := s.kv.Delete(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("module %q: removing its rollout: %w", name, err)
		}
	}
	for _, m := range versions {
		if err := s.obj.Delete(ctx, versionObject(name, m.Version)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("module %q: removing v%d: %w", name, m.Version, err)
		}
	}
	return nil
}

// Watch sends the name of a module whenever its current version or its
// rollout changes (push, rollback, remove, shadow, promote, a canary
// withdrawn), until ctx ends. It watches those keys of the bw_modules_meta
// bucket.
func (s *Store) Watch(ctx context.Context) (<-chan string, error) {
	w, err := s.kv.WatchFiltered(ctx, []string{currentPrefix + "*", rolloutPrefix + "*", withdrawnPrefix + "*"}, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("module store: watch: %w", err)
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				_, name, _ := strings.Cut(e.Key(), ".")
				select {
				case out <- name:
				case <-ctx.Done():
					return
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
