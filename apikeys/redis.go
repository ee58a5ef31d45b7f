package apikeys

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// RedisCache shares keys between API processes through Redis, read with
// rueidis client-side caching: a hit costs no round trip, and any write to
// the Redis key (a revocation) makes Redis invalidate every process's local
// copy at once.
type RedisCache struct {
	client rueidis.Client
	prefix string
	ttl    time.Duration
}

// NewRedisCache returns a cache under prefix with entries living for ttl.
func NewRedisCache(client rueidis.Client, prefix string, ttl time.Duration) *RedisCache {
	return &RedisCache{client: client, prefix: prefix + ":apikey:", ttl: ttl}
}

// Get implements Cache.
func (c *RedisCache) Get(ctx context.Context, hash string) (*Key, bool, error) {
	b, err := c.client.DoCache(ctx, c.client.B().Get().Key(c.prefix+hash).Cache(), c.ttl).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis get: %w", err)
	}
	var k Key
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, false, nil
	}
	return &k, true, nil
}

// Add implements Cache: SET NX, so it never overwrites a revocation.
func (c *RedisCache) Add(ctx context.Context, hash string, k *Key) error {
	b, _ := json.Marshal(k)
	err := c.client.Do(ctx, c.client.B().Set().Key(c.prefix+hash).Value(string(b)).Nx().Ex(c.ttl).Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}

// Revoke implements Cache: it overwrites the entry with a revoked
// tombstone for one TTL, which also keeps a concurrent stale refill (SET NX)
// from bringing the active key back.
func (c *RedisCache) Revoke(ctx context.Context, hash string) error {
	b, _ := json.Marshal(&Key{Revoked: true})
	if err := c.client.Do(ctx, c.client.B().Set().Key(c.prefix+hash).Value(string(b)).Ex(c.ttl).Build()).Error(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}
