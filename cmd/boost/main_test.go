package main

import (
	"runtime/debug"
	"testing"
)

func TestDevMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	tests := []struct {
		name      string
		env       map[string]string
		preset    int64 // what the runtime took from GOMEMLIMIT at start
		wantLimit int64
	}{
		{name: "unset: the dev default", env: map[string]string{}, preset: before, wantLimit: devMemoryLimit},
		{name: "GOMEMLIMIT wins", env: map[string]string{"GOMEMLIMIT": "2GiB"}, preset: 2 << 30, wantLimit: 2 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(tt.preset)
			got := setDevMemoryLimit(func(k string) string { return tt.env[k] })
			if got != tt.wantLimit {
				t.Errorf("setDevMemoryLimit = %d, want %d", got, tt.wantLimit)
			}
			if now := debug.SetMemoryLimit(-1); now != tt.wantLimit {
				t.Errorf("limit in force = %d, want %d", now, tt.wantLimit)
			}
		})
	}
}
