package domain

import (
	"fmt"

	"github.com/google/uuid"
)

// NewID returns a time-ordered UUIDv7, so ids sort by creation time in
// indexes and logs.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// ParseID checks that s is a canonical UUID and returns it lower-cased. Path
// and body ids go through it so a malformed id is a 400, not a lookup miss.
func ParseID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", fmt.Errorf("not a UUID: %q", truncate(s, 64))
	}
	return u.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
