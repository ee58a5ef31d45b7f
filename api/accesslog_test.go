package api

import (
	"log/slog"
	"testing"
	"time"
)

func TestAccessLevel(t *testing.T) {
	for _, tc := range []struct {
		status  int
		elapsed time.Duration
		want    slog.Level
	}{
		{202, time.Millisecond, slog.LevelDebug},
		{200, 999 * time.Millisecond, slog.LevelDebug},
		{200, time.Second, slog.LevelWarn},
		{400, time.Millisecond, slog.LevelInfo},
		{429, time.Millisecond, slog.LevelInfo},
		{404, 2 * time.Second, slog.LevelWarn},
		{500, time.Millisecond, slog.LevelError},
		{503, 3 * time.Second, slog.LevelError},
	} {
		if got := accessLevel(tc.status, tc.elapsed); got != tc.want {
			t.Errorf("accessLevel(%d, %s) = %s, want %s", tc.status, tc.elapsed, got, tc.want)
		}
	}
}
