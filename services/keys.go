package services

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/bus"
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
	if n.api != nil {
		r = append(r, n.api.auth)
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

// watchRevocations tells this process's authenticator of every key
// revoked from now on, straight from the event stream, so each API process
// refuses a revoked key within moments whatever other role has Redis: it
// does not wait for the projector to apply the revocation, nor for a cache
// entry to expire.
func watchRevocations(ctx context.Context, js jetstream.JetStream, names bus.Names, auth *apikeys.Authenticator, log *slog.Logger) {
	var last uint64 // the last event seen: a restart misses nothing after it
	for ctx.Err() == nil {
		// Every event of the stream (FilterSubjects needs NATS 2.10); it
		// is the low-volume one, tenancy changes only.
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy, MaxResetAttempts: 3}
		if last > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
		}
		cons, err := js.OrderedConsumer(ctx, names.EventStream(), cfg)
		if err == nil {
			err = consumeRevocations(ctx, cons, auth, log, &last)
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("watching key revocations failed; retrying (the read model still refuses revoked keys)", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func consumeRevocations(ctx context.Context, cons jetstream.Consumer, auth *apikeys.Authenticator, log *slog.Logger, last *uint64) error {
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			return err
		}
		if meta, err := m.Metadata(); err == nil {
			*last = meta.Sequence.Stream
		}
		if m.Headers().Get("name") != domain.APIKeyRevoked {
			continue
		}
		var e domain.Event
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			continue
		}
		d, err := domain.DecodeData[domain.APIKeyRevokedData](&e)
		if err != nil || d.Hash == "" {
			continue
		}
		auth.Revoked(ctx, d.Hash)
		log.Info("API key revoked: this process refuses it from now on", "keyId", d.KeyID, "project", e.ProjectID)
	}
}
