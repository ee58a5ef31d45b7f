package services

import (
	"context"
	"errors"
	"time"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/ratelimit"
)

// keySource adapts the api_keys read model to the authenticator.
type keySource struct{ q *queries.Queries }

func (s keySource) KeyByHash(ctx context.Context, hash string) (*apikeys.Key, error) {
	k, err := s.q.APIKeyByHash(ctx, hash)
	if errors.Is(err, queries.ErrNotFound) {
		return nil, apikeys.ErrUnknown
	}
	if err != nil {
		return nil, err
	}
	return &apikeys.Key{ID: k.ID, ProjectID: k.ProjectID, OrganizationID: k.OrganizationID,
		Type: domain.KeyType(k.Type), Revoked: k.RevokedAt != nil}, nil
}

// keyCache picks the API's key cache: Redis with client-side caching when
// configured; else in-process, with the full TTL when this process also
// runs the projector (it invalidates directly) and half a second otherwise
// (nothing could tell it of a revocation).
func (n *Node) keyCache() apikeys.Cache {
	if n.Redis != nil {
		return apikeys.NewRedisCache(n.Redis, n.Config.NATSPrefix, n.Config.KeyCacheTTL)
	}
	ttl := n.Config.KeyCacheTTL
	if !n.has(RoleProjector) {
		ttl = 500 * time.Millisecond
	}
	return apikeys.NewLocalCache(ttl, 100_000)
}

// revocations is who the projector tells of revoked keys: the API's
// authenticator in the same process, and Redis for every other process.
func (n *Node) revocations() projections.KeyRevocations {
	var r multiRevocations
	n.mu.Lock()
	if n.auth != nil {
		r = append(r, n.auth)
	}
	n.mu.Unlock()
	if n.Redis != nil && len(r) == 0 {
		r = append(r, apikeys.New(nil, apikeys.NewRedisCache(n.Redis, n.Config.NATSPrefix, n.Config.KeyCacheTTL), n.Log))
	}
	return r
}

type multiRevocations []projections.KeyRevocations

func (m multiRevocations) Revoked(ctx context.Context, hash string) {
	for _, r := range m {
		r.Revoked(ctx, hash)
	}
}

func (n *Node) limiter() ratelimit.Limiter {
	if n.Config.RateLimit <= 0 {
		return nil
	}
	cfg := ratelimit.Config{Rate: n.Config.RateLimit, Burst: n.Config.RateBurst}
	if n.Redis != nil {
		return ratelimit.NewRedis(n.Redis, n.Config.NATSPrefix, cfg)
	}
	return ratelimit.NewLocal(cfg)
}

func sendUsage(ctx context.Context, cb *commands.Bus, us []apikeys.Usage) error {
	cmd := &commands.RecordKeyUsage{Header: commands.NewHeader("")}
	for _, u := range us {
		cmd.Usages = append(cmd.Usages, commands.KeyUsage{ProjectID: u.Key.ProjectID,
			OrganizationID: u.Key.OrganizationID, KeyID: u.Key.ID, LastUsedAt: u.LastUsedAt})
	}
	return cb.Send(ctx, cmd)
}
