// Package vault keeps upstream credentials (API keys, OAuth tokens for
// Slack, GitHub, …) encrypted in the store and hands them, decrypted, to the
// code that injects them into upstream requests. It also seals the gateway's
// token-signing private keys with the same keys.
//
// # Keys
//
// A key-encryption key (KEK) is 32 random bytes that never enter the store.
// The operator gives the gateway a reference to it: file:/path/to/kek (a
// file holding the key as standard base64, or as exactly 32 raw bytes, that
// only its owner may access: mode 0600 or 0400) or env:NAME (an environment
// variable holding the key in standard base64). A KEK is known by its id, the
// first 8 bytes of SHA-256 of the key in hex (16 characters), which is
// stored next to everything it encrypts and is not secret.
//
// A Keyring holds one primary KEK, used for all new encryption, and any
// number of previous KEKs, used only to decrypt what they encrypted before.
//
// # Envelope encryption
//
// Every secret value gets a fresh random 32-byte data key (DEK). The value
// is encrypted with AES-256-GCM under the DEK; the DEK is encrypted
// ("wrapped") with AES-256-GCM under the primary KEK. The store keeps the
// encrypted value, the wrapped DEK and the KEK id; the plain value and the
// plain DEK never reach it. Every encryption uses a fresh random 12-byte
// nonce.
//
// Both encryptions bind the ciphertext to its identity with GCM additional
// data, so ciphertexts copied to another record do not decrypt:
//
//	value:       "gatehouse/vault/v1|" + name + "|" + agent
//	wrapped DEK: "gatehouse/vault/v1/dek|" + KEK id + "|" + the value's additional data
//
// A secret name cannot contain "|", so the additional data is unambiguous.
// Sealed blobs (Keyring.Seal) use "gatehouse/vault/v1/seal|" + the caller's
// additional data in place of the value's.
//
// Every format starts with a version byte (currently 1), so formats can
// change later while old data stays readable. The layouts, with n the
// length of the plaintext:
//
//	VaultSecret.WrappedDEK  (61 bytes)
//	  [0]       version 0x01
//	  [1:13]    nonce
//	  [13:61]   AES-256-GCM(KEK, DEK): 32 bytes + 16-byte tag
//
//	VaultSecret.Ciphertext  (29+n bytes)
//	  [0]       version 0x01
//	  [1:13]    nonce
//	  [13:]     AES-256-GCM(DEK, value): n bytes + 16-byte tag
//
//	Keyring.Seal output     (97+n bytes, self-describing)
//	  [0]       version 0x01
//	  [1:9]     KEK id, raw (its hex form is the KEK id)
//	  [9:21]    DEK nonce
//	  [21:69]   AES-256-GCM(KEK, DEK): 32 bytes + 16-byte tag
//	  [69:81]   value nonce
//	  [81:]     AES-256-GCM(DEK, plaintext): n bytes + 16-byte tag
//
// # Rotating the key-encryption key
//
// Rotation replaces the KEK without downtime and without re-encrypting any
// value: only the 61-byte wrapped DEKs change.
//
//  1. Generate a new KEK (GenerateKEK; the "gatehouse vault new-kek"
//     command) and store it where every replica can read it.
//  2. Configure every replica with the new KEK as primary and the old one as
//     previous, and reload them. From then on new secrets are wrapped with
//     the new KEK and every replica reads secrets wrapped with either.
//  3. Run Vault.Rotate once (and Keyring.Rewrap over the sealed signing
//     keys). It unwraps every DEK still wrapped by a previous KEK and wraps
//     it again with the primary; it never decrypts a value. It is
//     idempotent: run it again after an interruption. The gateway keeps
//     serving meanwhile, because every record is readable before and after
//     it is rewritten.
//  4. Check with Vault.List that every entry shows the new KEK id.
//  5. Remove the old KEK from the configuration of every replica, and
//     destroy it once no backup of the store taken before step 3 is needed:
//     such a backup can only be read with the old KEK.
//
// Rotating the KEK does not change the credentials themselves. If a KEK
// leaked together with a copy of the store, rotate the upstream credentials
// too.
//
// # Caching and hygiene
//
// Decrypted values can be cached in memory, bounded by entry count and age.
// Cache entries are dropped on Put and Delete, on store.Change notifications
// of kind "secret" (HandleChange, Watch) and all of them on "resync".
//
// Values, DEKs and KEKs never appear in errors or logs; a Value redacts
// itself when formatted or logged. DEKs are zeroed after use (the AES key
// schedule derived from them is not reachable and is left to the garbage
// collector).
//
// # References
//
// Configuration refers to secrets as vault:NAME (ParseRef), or inside a
// template as {{vault:NAME}}, e.g. "Bearer {{vault:github-token}}" (Expand).
// In a template, {{{{ stands for a literal {{, and any other {{ is an error.
package vault
