// Package ratelimit is a per-key token bucket counted in events: in-process
// for `boost dev`, shared through Redis by every API process otherwise.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Decision is the answer for one request, with what the RateLimit-*
// headers report.
type Decision struct {
	Allowed    bool
	Limit      int           // burst size
	Remaining  int           // tokens left
	Reset      time.Duration // until the bucket is full again
	RetryAfter time.Duration // when denied: until n tokens are back
}

// Limiter takes n tokens for key if it can.
type Limiter interface {
	Allow(ctx context.Context, key string, n int) (Decision, error)
}

// Config is a refill rate in events per second and a burst.
type Config struct {
	Rate  float64
	Burst int
}

func (c Config) decide(tokens float64, allowed bool, n int) Decision {
	d := Decision{Allowed: allowed, Limit: c.Burst, Remaining: int(math.Floor(tokens))}
	d.Reset = time.Duration((float64(c.Burst) - tokens) / c.Rate * float64(time.Second))
	if !allowed {
		d.RetryAfter = time.Duration((float64(n) - tokens) / c.Rate * float64(time.Second))
	}
	return d
}

// Local is an in-process limiter.
type Local struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLocal returns an in-process limiter.
func NewLocal(cfg Config) *Local { return &Local{cfg: cfg, buckets: map[string]*bucket{}} }

// Allow implements Limiter.
func (l *Local) Allow(_ context.Context, key string, n int) (Decision, error) {
	n = min(n, l.cfg.Burst)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) > 100_000 {
			clear(l.buckets)
		}
		b = &bucket{tokens: float64(l.cfg.Burst), at: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.cfg.Burst), b.tokens+now.Sub(b.at).Seconds()*l.cfg.Rate)
	b.at = now
	allowed := b.tokens >= float64(n)
	if allowed {
		b.tokens -= float64(n)
	}
	return l.cfg.decide(b.tokens, allowed, n), nil
}

// tokenBucket runs atomically in Redis on its own clock, so API processes
// with skewed clocks share one bucket fairly.
var tokenBucket = rueidis.NewLuaScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local allowed = 0
if tokens >= n then
  tokens = tokens - n
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
`)

// Redis is a limiter shared by every API process.
type Redis struct {
	cfg    Config
	client rueidis.Client
	prefix string
}

// NewRedis returns a Redis-backed limiter with keys under prefix.
func NewRedis(client rueidis.Client, prefix string, cfg Config) *Redis {
	return &Redis{cfg: cfg, client: client, prefix: prefix + ":ratelimit:"}
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, n int) (Decision, error) {
	n = min(n, r.cfg.Burst)
	res, err := tokenBucket.Exec(ctx, r.client, []string{r.prefix + key},
		[]string{strconv.FormatFloat(r.cfg.Rate, 'f', -1, 64), strconv.Itoa(r.cfg.Burst), strconv.Itoa(n)}).ToArray()
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	if len(res) != 2 {
		return Decision{}, fmt.Errorf("redis rate limit: unexpected reply of %d values", len(res))
	}
	allowed, err := res[0].AsInt64()
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	s, err := res[1].ToString()
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	tokens, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	return r.cfg.decide(tokens, allowed == 1, n), nil
}
