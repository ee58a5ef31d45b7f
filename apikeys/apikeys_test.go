package apikeys_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
)

// table is a key table in memory, standing in for the api_keys read model:
// it only stores and counts lookups, it decides nothing.
type table struct {
	keys    map[string]apikeys.Key
	lookups atomic.Int64
}

func (s *table) KeyByHash(_ context.Context, hash string) (*apikeys.Key, error) {
	s.lookups.Add(1)
	k, ok := s.keys[hash]
	if !ok {
		return nil, apikeys.ErrUnknown
	}
	return &k, nil
}

func caches(t *testing.T) map[string]func() apikeys.Cache {
	out := map[string]func() apikeys.Cache{"local": func() apikeys.Cache { return apikeys.NewLocalCache(time.Minute, 100) }}
	if url := os.Getenv("BOOST_TEST_REDIS_URL"); url != "" {
		prefix := "aktest" + testenv.RandomSuffix()
		out["redis"] = func() apikeys.Cache {
			opt, _ := rueidis.ParseURL(url)
			rc, err := rueidis.NewClient(opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rc.Close)
			return apikeys.NewRedisCache(rc, prefix, time.Minute)
		}
	}
	return out
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, newCache := range caches(t) {
		t.Run(name, func(t *testing.T) {
			pk, _ := domain.GenerateKey(domain.KeyPublishable)
			sk, _ := domain.GenerateKey(domain.KeySecret)
			src := &table{keys: map[string]apikeys.Key{
				pk.Hash: {ID: "pk", ProjectID: "p", Type: domain.KeyPublishable},
				sk.Hash: {ID: "sk", ProjectID: "p", Type: domain.KeySecret},
			}}
			a := apikeys.New(src, newCache(), log)
			other := apikeys.New(src, newCache(), log) // a second API process

			for _, c := range []struct {
				key  string
				want error
			}{
				{"", apikeys.ErrMalformed}, {"pk_live_short", apikeys.ErrMalformed}, {"Bearer " + pk.Plaintext, apikeys.ErrMalformed},
				{pk.Plaintext, nil}, {sk.Plaintext, nil},
				{"sk_live_" + pk.Plaintext[8:], apikeys.ErrUnknown}, // right secret, wrong type prefix
			} {
				if _, err := a.Authenticate(ctx, c.key); !errors.Is(err, c.want) {
					t.Errorf("Authenticate(%.14q) = %v, want %v", c.key, err, c.want)
				}
			}
			before := src.lookups.Load()
			for range 50 {
				if k, err := a.Authenticate(ctx, pk.Plaintext); err != nil || k.ID != "pk" {
					t.Fatalf("cached key: %v %v", k, err)
				}
			}
			if n := src.lookups.Load() - before; n != 0 {
				t.Fatalf("%d database lookups for 50 cached authentications", n)
			}
			if _, err := other.Authenticate(ctx, pk.Plaintext); err != nil {
				t.Fatal(err)
			}
			// Revocation reaches both processes' caches without waiting for the TTL.
			a.Revoked(ctx, pk.Hash)
			deadline := time.Now().Add(time.Second)
			for _, auth := range []*apikeys.Authenticator{a, other} {
				for {
					_, err := auth.Authenticate(ctx, pk.Plaintext)
					if errors.Is(err, apikeys.ErrRevoked) {
						break
					}
					if name == "local" && auth == other {
						break // separate in-process caches share nothing; the TTL bounds them
					}
					if time.Now().After(deadline) {
						t.Fatalf("revoked key still accepted: %v", err)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			if _, err := a.Authenticate(ctx, sk.Plaintext); err != nil {
				t.Fatalf("other key affected by the revocation: %v", err)
			}
		})
	}
}
