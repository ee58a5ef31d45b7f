package apikeys

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Usage is the last time a key was used.
type Usage struct {
	Key        Key
	LastUsedAt time.Time
}

// UsageRecorder coalesces key usage: requests only touch a map, and Run
// hands the latest use of each key to flush once per interval.
type UsageRecorder struct {
	mu      sync.Mutex
	pending map[string]Usage
	log     *slog.Logger
}

// NewUsageRecorder returns an empty recorder.
func NewUsageRecorder(log *slog.Logger) *UsageRecorder {
	return &UsageRecorder{pending: map[string]Usage{}, log: log}
}

// Record notes that k was used now.
func (u *UsageRecorder) Record(k *Key) {
	now := time.Now().UTC().Truncate(time.Second)
	u.mu.Lock()
	u.pending[k.ID] = Usage{Key: *k, LastUsedAt: now}
	u.mu.Unlock()
}

func (u *UsageRecorder) take() []Usage {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.pending) == 0 {
		return nil
	}
	out := make([]Usage, 0, len(u.pending))
	for _, x := range u.pending {
		out = append(out, x)
	}
	clear(u.pending)
	return out
}

// Run flushes every interval until ctx ends, then once more.
func (u *UsageRecorder) Run(ctx context.Context, interval time.Duration, flush func(context.Context, []Usage) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	send := func(ctx context.Context) {
		if batch := u.take(); len(batch) > 0 {
			if err := flush(ctx, batch); err != nil {
				u.log.WarnContext(ctx, "recording key usage failed; dropped this interval", "keys", len(batch), "err", err)
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			send(final)
			cancel()
			return
		case <-t.C:
			send(ctx)
		}
	}
}
