// Package modulestore keeps policy modules in the JetStream object store
// bucket bw_modules, versioned, with their sha256, exported kinds, ABI
// version, signer and upload time.
//
// Layout: each version is the object "<name>/v<N>" (N = 1, 2, ...), its
// facts in the object's metadata; "<name>/current" holds the version in
// use, so a rollback is a pointer change and every instance watching the
// bucket sees pushes and rollbacks at once (Watch).
//
// Signing uses ed25519 through NATS nkeys: Sign with a seed (runtime module
// keygen makes one), Verify against trusted public keys. In secure mode
// (Options.TrustedKeys set) Push refuses unsigned, wrongly signed and
// untrusted modules, and Get verifies again before a module is loaded.
package modulestore
