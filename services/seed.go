package services

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/queries"
)

// Seeded is what Seed created; the keys are plaintext and shown once.
type Seeded struct {
	OrganizationID string
	ProjectID      string
	PublishableKey string
	SecretKey      string
}

// Seed creates a default organization and project with one publishable and
// one secret key, through the same commands the API sends, and waits until
// the read models show them.
func Seed(ctx context.Context, cb *commands.Bus, q *queries.Queries) (*Seeded, error) {
	if cb == nil || q == nil {
		return nil, errors.New("seeding needs the api role")
	}
	s := &Seeded{OrganizationID: domain.NewID(), ProjectID: domain.NewID()}
	if err := cb.Send(ctx, &commands.CreateOrganization{Header: commands.NewHeader(""),
		OrganizationID: s.OrganizationID, Name: "Default organization"}); err != nil {
		return nil, err
	}
	if err := await(ctx, func() error { _, err := q.Organization(ctx, s.OrganizationID); return err }); err != nil {
		return nil, fmt.Errorf("waiting for the organization: %w", err)
	}
	if err := cb.Send(ctx, &commands.CreateProject{Header: commands.NewHeader(""), ProjectID: s.ProjectID,
		OrganizationID: s.OrganizationID, Name: "Default project"}); err != nil {
		return nil, err
	}
	if err := await(ctx, func() error { _, err := q.Project(ctx, s.ProjectID); return err }); err != nil {
		return nil, fmt.Errorf("waiting for the project: %w", err)
	}
	for _, k := range []struct {
		t    domain.KeyType
		name string
		dst  *string
	}{{domain.KeyPublishable, "Default publishable key", &s.PublishableKey}, {domain.KeySecret, "Default secret key", &s.SecretKey}} {
		key, err := domain.GenerateKey(k.t)
		if err != nil {
			return nil, err
		}
		keyID := domain.NewID()
		if err := cb.Send(ctx, &commands.CreateKey{Header: commands.NewHeader(""), ProjectID: s.ProjectID,
			KeyID: keyID, Name: k.name, Type: k.t, Hash: key.Hash, Prefix: key.Prefix}); err != nil {
			return nil, err
		}
		if err := await(ctx, func() error { _, err := q.APIKey(ctx, s.ProjectID, keyID); return err }); err != nil {
			return nil, fmt.Errorf("waiting for the %s key: %w", k.t, err)
		}
		*k.dst = key.Plaintext
	}
	return s, nil
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
