package modulestore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nkeys"
)

// Signature errors (errors.Is).
var (
	ErrUnsigned     = errors.New("module is not signed")
	ErrBadSignature = errors.New("module signature does not verify")
	ErrUntrustedKey = errors.New("module signed by a key that is not trusted")
)

// Signature is an ed25519 signature of a module's bytes and the nkey
// public key that made it.
type Signature struct {
	PublicKey string `json:"public_key"`
	Sig       []byte `json:"signature"`
}

// GenerateKey makes a signing key: a user nkey seed (keep it secret) and
// its public key (put it in modules.trusted_keys).
func GenerateKey() (seed []byte, public string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", fmt.Errorf("generating a key: %w", err)
	}
	if seed, err = kp.Seed(); err != nil {
		return nil, "", err
	}
	if public, err = kp.PublicKey(); err != nil {
		return nil, "", err
	}
	return seed, public, nil
}

// Sign signs wasm with the nkey seed.
func Sign(seed, wasm []byte) (*Signature, error) {
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w (want an nkey seed, as made by `runtime module keygen`)", err)
	}
	sig, err := kp.Sign(wasm)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return &Signature{PublicKey: pub, Sig: sig}, nil
}

// Verify checks sig over wasm and, when trusted is not empty, that the key
// is trusted.
func Verify(wasm []byte, sig *Signature, trusted []string) error {
	if sig == nil || sig.PublicKey == "" || len(sig.Sig) == 0 {
		return ErrUnsigned
	}
	kp, err := nkeys.FromPublicKey(sig.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: signer %q is not an nkey public key", ErrBadSignature, sig.PublicKey)
	}
	if err := kp.Verify(wasm, sig.Sig); err != nil {
		return fmt.Errorf("%w (signer %s): the bytes were changed after signing, or signed with another key", ErrBadSignature, sig.PublicKey)
	}
	if len(trusted) > 0 && !slices.Contains(trusted, sig.PublicKey) {
		return fmt.Errorf("%w: %s (trusted: %v)", ErrUntrustedKey, sig.PublicKey, trusted)
	}
	return nil
}
