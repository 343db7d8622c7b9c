// Package modulestore keeps policy modules in JetStream, versioned, with
// their sha256, exported kinds, ABI version, signer and upload time.
//
// Layout:
//
//   - Object store bw_modules: each version is the object "<name>/v<N>"
//     (N = 1, 2, ...), its facts in the object's metadata. A version object
//     is written once and never overwritten.
//   - KV bucket bw_modules_meta (MetaBucket, same replicas):
//     "alloc.<name>" is the last version handed out, "current.<name>" the
//     version in use, "rollout.<name>" its Rollout (a shadow version, a
//     canary and its percent, a generation; set by operators through
//     SetShadow and Promote), "withdrawn.<name>" the Withdrawal of a canary
//     an instance rolled back (Withdraw: the one key a worker may write),
//     "trust" the trust policy (TrustPolicy, JSON).
//
// Every change to bw_modules_meta is a compare-and-set on the key's
// revision, retried a bounded number of times; an operation that keeps
// losing returns a *ConflictError (errors.Is ErrConflict) and overwrites
// nothing. Push reserves version N on "alloc.<name>" before it writes the
// object, so concurrent pushes of one name get distinct versions; it then
// moves "current.<name>" forward to N unless a newer version is already
// current (Meta.Current says which). Rollback and Remove move or delete
// the pointer the same way. A rollback is a pointer change, and every
// instance watching the pointers sees pushes, rollbacks, removals and
// rollout changes at once (Watch). Remove keeps the version counter: numbers are never
// reused. Open moves pointers kept by older releases (objects
// "<name>/current") into the KV bucket.
//
// Signing uses ed25519 through NATS nkeys: Sign with a seed (runtime module
// keygen makes one), Verify against trusted public keys.
//
// Secure mode is a property of the store, not of a client: the trust
// policy lives in bw_modules_meta, and Push, Get and Rollback enforce it
// for every client whatever its own configuration. While it names any key,
// unsigned, wrongly signed and untrusted modules are refused at push,
// refused as rollback targets, and refused again by Get before a module
// is loaded. Open merges Options.TrustedKeys into it (adding keys is
// safe); removing a key takes an explicit UntrustKey, and removing the
// last one (secure mode off) takes force. A policy that cannot be decoded
// fails closed (ErrCorruptPolicy). Secure reports the stored policy.
package modulestore
