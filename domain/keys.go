package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeyType says what a key may do: publishable keys are safe to ship in a
// browser and may send behavioural events only; secret keys may do anything.
type KeyType string

const (
	KeyPublishable KeyType = "publishable"
	KeySecret      KeyType = "secret"
)

// Valid reports whether t is one of the known key types.
func (t KeyType) Valid() bool { return t == KeyPublishable || t == KeySecret }

func (t KeyType) prefix() string {
	if t == KeySecret {
		return "sk_live_"
	}
	return "pk_live_"
}

const (
	keyRandomBytes = 32
	// keyPrefixLen is how much of the plaintext is kept for display:
	// "pk_live_" plus 4 hex characters, enough to tell keys apart in a list
	// and far too little to guess the rest (2^224 left).
	keyPrefixLen = len("pk_live_") + 4
	keyLen       = len("pk_live_") + 2*keyRandomBytes
)

// GeneratedKey is a freshly minted API key. Plaintext must be shown to the
// caller once and then dropped; only Hash and Prefix may be stored or sent.
type GeneratedKey struct {
	Plaintext string
	Hash      string
	Prefix    string
}

// GenerateKey mints a new key of type t from crypto/rand.
func GenerateKey(t KeyType) (GeneratedKey, error) {
	if !t.Valid() {
		return GeneratedKey{}, fmt.Errorf("unknown key type %q", t)
	}
	var b [keyRandomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return GeneratedKey{}, fmt.Errorf("reading random bytes: %w", err)
	}
	plain := t.prefix() + hex.EncodeToString(b[:])
	return GeneratedKey{Plaintext: plain, Hash: HashKey(plain), Prefix: plain[:keyPrefixLen]}, nil
}

// HashKey is the only form in which a key is stored or looked up.
func HashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// ErrMalformedKey is returned by ParseKey for anything that cannot be a key,
// so callers can reject it before any cache or database lookup.
var ErrMalformedKey = errors.New("malformed API key")

// ParseKey checks the key format and returns the key type it claims.
func ParseKey(s string) (KeyType, error) {
	if len(s) != keyLen {
		return "", ErrMalformedKey
	}
	var t KeyType
	switch {
	case strings.HasPrefix(s, "pk_live_"):
		t = KeyPublishable
	case strings.HasPrefix(s, "sk_live_"):
		t = KeySecret
	default:
		return "", ErrMalformedKey
	}
	for _, c := range s[len("pk_live_"):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", ErrMalformedKey
		}
	}
	return t, nil
}
