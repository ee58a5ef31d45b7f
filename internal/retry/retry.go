// Package retry is Boost's one way of trying again: an exponential backoff
// (github.com/cenkalti/backoff/v5) for the loops that wait out a dependency
// — a role starting before NATS or Kafka, a stage retrying a batch, a
// message handed back while JetStream is down.
package retry

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Delay is how long to wait before the attempt-th retry (0-based):
// 100 ms, doubling, at most ceiling, without jitter so a test can reason
// about it.
func Delay(attempt int, ceiling time.Duration) time.Duration {
	b := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: ceiling}
	b.Reset()
	d := b.NextBackOff()
	for range min(attempt, 16) {
		d = b.NextBackOff()
	}
	return d
}

// Sleep waits d or until ctx ends, reporting whether it waited it out.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Forever calls fn until it succeeds or ctx ends, backing off up to 3 s
// between tries and logging every tenth failure as what failed.
func Forever(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	tries := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, fn() },
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond,
			RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 3 * time.Second}),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			if tries%10 == 0 {
				log.Warn(what+" failed; retrying", "attempt", tries, "err", err)
			}
			tries++
		}))
	if err != nil && ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}
