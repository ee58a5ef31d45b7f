package retry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestDelayDoublesUpToTheCeiling(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1600, 3000, 3000}
	for i, w := range want {
		if got := Delay(i, 3*time.Second); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %s, want %s", i, got, w*time.Millisecond)
		}
	}
}

func TestForeverRetriesUntilSuccessOrCancel(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := 0
	if err := Forever(context.Background(), log, "x", func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Forever: %v after %d calls", err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Forever(ctx, log, "x", func() error { return errors.New("never") }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Forever after cancel: %v", err)
	}
}
