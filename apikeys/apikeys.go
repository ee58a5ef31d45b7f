// Package apikeys authenticates ingestion requests by API key: format check
// first, then hash → cache (in-process, or Redis with client-side caching)
// → the api_keys read model. Revocations reach every API process through
// the cache instead of waiting for a TTL.
package apikeys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gamify/boost/domain"
)

// Key is what a request is authenticated as.
type Key struct {
	ID             string         `json:"id"`
	ProjectID      string         `json:"projectId"`
	OrganizationID string         `json:"organizationId"`
	Type           domain.KeyType `json:"type"`
	Revoked        bool           `json:"revoked,omitempty"`
}

// Errors Authenticate returns for keys that cannot be used: all are 401s.
var (
	ErrMalformed = errors.New("malformed API key")
	ErrUnknown   = errors.New("unknown API key")
	ErrRevoked   = errors.New("revoked API key")
)

// Source looks a key up by hash in the read model; ErrUnknown when absent.
type Source interface {
	KeyByHash(ctx context.Context, hash string) (*Key, error)
}

// Cache holds keys by hash. Add must not overwrite (a stale refill must not
// undo a revocation); Revoke must overwrite and reach every process.
type Cache interface {
	Get(ctx context.Context, hash string) (*Key, bool, error)
	Add(ctx context.Context, hash string, k *Key) error
	Revoke(ctx context.Context, hash string) error
}

// Authenticator checks keys.
type Authenticator struct {
	src   Source
	cache Cache
	neg   *negative
	log   *slog.Logger
	// revoked remembers hashes revoked while this process ran, for longer
	// than the cache's TTL and any projection lag: once told, a process
	// refuses the key whatever a cache refill or the read model says.
	revoked *negative
}

// New returns an authenticator over src with cache in front of it.
func New(src Source, cache Cache, log *slog.Logger) *Authenticator {
	return &Authenticator{src: src, cache: cache, neg: newNegative(2*time.Second, 50_000), log: log,
		revoked: newNegative(revokedMemory, 1_000_000)}
}

// Authenticate returns the key plaintext belongs to. A malformed key is
// refused before any lookup; an unknown one is remembered briefly so a
// flood of bad keys does not reach the database.
func (a *Authenticator) Authenticate(ctx context.Context, plaintext string) (*Key, error) {
	typ, err := domain.ParseKey(plaintext)
	if err != nil {
		return nil, ErrMalformed
	}
	hash := domain.HashKey(plaintext)
	if a.revoked.has(hash) {
		return nil, ErrRevoked
	}
	k, ok, err := a.cache.Get(ctx, hash)
	if err != nil {
		a.log.WarnContext(ctx, "key cache unavailable; reading the database", "err", err)
	}
	if !ok {
		if a.neg.has(hash) {
			return nil, ErrUnknown
		}
		k, err = a.src.KeyByHash(ctx, hash)
		if errors.Is(err, ErrUnknown) {
			a.neg.add(hash)
			return nil, ErrUnknown
		}
		if err != nil {
			return nil, fmt.Errorf("looking up API key: %w", err)
		}
		if err := a.cache.Add(ctx, hash, k); err != nil {
			a.log.WarnContext(ctx, "caching key failed", "err", err)
		}
	}
	if k.Revoked {
		return nil, ErrRevoked
	}
	if k.Type != typ {
		return nil, ErrUnknown
	}
	return k, nil
}

// revokedMemory is how long a process remembers a revocation it was told
// of: far past the cache TTL and any projection lag.
const revokedMemory = time.Hour

// Revoked implements projections.KeyRevocations: the key is refused by
// this process from now on, and the cache (shared through Redis when it
// is) is told.
func (a *Authenticator) Revoked(ctx context.Context, hash string) {
	a.revoked.add(hash)
	if err := a.cache.Revoke(ctx, hash); err != nil {
		a.log.ErrorContext(ctx, "invalidating revoked key in cache failed", "err", err)
	}
}

// negative remembers unknown hashes for a short while, bounded in size.
type negative struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	seen map[string]time.Time
}

func newNegative(ttl time.Duration, max int) *negative {
	return &negative{ttl: ttl, max: max, seen: map[string]time.Time{}}
}

func (n *negative) has(h string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.seen[h]
	return ok && time.Since(t) < n.ttl
}

func (n *negative) add(h string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.seen) >= n.max {
		clear(n.seen)
	}
	n.seen[h] = time.Now()
}
