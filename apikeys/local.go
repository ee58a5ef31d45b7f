package apikeys

import (
	"context"
	"sync"
	"time"
)

// LocalCache is an in-process cache. In `boost dev` the projector runs in
// the same process and revokes directly; distributed without Redis, a short
// TTL bounds how long another process may still accept a revoked key.
type LocalCache struct {
	mu      sync.RWMutex
	ttl     time.Duration
	max     int
	entries map[string]localEntry
}

type localEntry struct {
	key     Key
	expires time.Time
}

// NewLocalCache returns a cache whose entries live for ttl, holding at most
// max entries (it empties itself when full rather than grow).
func NewLocalCache(ttl time.Duration, max int) *LocalCache {
	return &LocalCache{ttl: ttl, max: max, entries: map[string]localEntry{}}
}

// Get implements Cache.
func (c *LocalCache) Get(_ context.Context, hash string) (*Key, bool, error) {
	c.mu.RLock()
	e, ok := c.entries[hash]
	c.mu.RUnlock()
	if !ok || time.Now().After(e.expires) {
		return nil, false, nil
	}
	k := e.key
	return &k, true, nil
}

// Add implements Cache.
func (c *LocalCache) Add(_ context.Context, hash string, k *Key) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[hash]; ok && time.Now().Before(e.expires) {
		return nil
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[hash] = localEntry{key: *k, expires: time.Now().Add(c.ttl)}
	return nil
}

// Revoke implements Cache.
func (c *LocalCache) Revoke(_ context.Context, hash string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[hash]
	e.key.Revoked = true
	e.expires = time.Now().Add(c.ttl)
	c.entries[hash] = e
	return nil
}
