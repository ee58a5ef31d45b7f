package services

import (
	"context"
	"errors"
	"time"
)

// Seeded is what Seed created; the keys are plaintext and shown once.
type Seeded struct {
	OrganizationID string
	ProjectID      string
	PublishableKey string
	SecretKey      string
}

func await(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
