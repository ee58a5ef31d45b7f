package ratelimit_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/ratelimit"
)

func limiters(t *testing.T, cfg ratelimit.Config) map[string]ratelimit.Limiter {
	out := map[string]ratelimit.Limiter{"local": ratelimit.NewLocal(cfg)}
	if url := os.Getenv("BOOST_TEST_REDIS_URL"); url != "" {
		opt, err := rueidis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rueidis.NewClient(opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rc.Close)
		out["redis"] = ratelimit.NewRedis(rc, "rltest"+testenv.RandomSuffix(), cfg)
	}
	return out
}

func TestTokenBucket(t *testing.T) {
	ctx := context.Background()
	for name, l := range limiters(t, ratelimit.Config{Rate: 10, Burst: 5}) {
		t.Run(name, func(t *testing.T) {
			for i := range 5 {
				d, err := l.Allow(ctx, "k", 1)
				if err != nil || !d.Allowed || d.Limit != 5 || d.Remaining != 4-i {
					t.Fatalf("request %d: %+v %v", i, d, err)
				}
			}
			d, err := l.Allow(ctx, "k", 1)
			if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 200*time.Millisecond {
				t.Fatalf("over the burst: %+v %v", d, err)
			}
			if d, _ := l.Allow(ctx, "other", 5); !d.Allowed {
				t.Fatalf("another key shares the bucket: %+v", d)
			}
			time.Sleep(250 * time.Millisecond) // 10/s refills 2 tokens
			if d, _ := l.Allow(ctx, "k", 2); !d.Allowed {
				t.Fatalf("not refilled: %+v", d)
			}
			// More than the burst at once takes the whole burst, not forever.
			time.Sleep(600 * time.Millisecond)
			if d, _ := l.Allow(ctx, "k", 50); !d.Allowed {
				t.Fatalf("a batch larger than the burst after a full refill: %+v", d)
			}
		})
	}
}
