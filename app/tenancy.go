package app

import (
	"context"
	"errors"
	"time"

	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/readmodel"
)

// CreateOrganization opens a tenant.
type CreateOrganization struct{ Name string }

// CreateProject adds a project to an organization.
type CreateProject struct{ OrganizationID, Name string }

// CreateKey mints an API key for a project.
type CreateKey struct {
	ProjectID, Name string
	Type            domain.KeyType
}

// RevokeKey disables a key for good; revoking it again is not an error.
type RevokeKey struct{ ProjectID, KeyID string }

// SendTestEvent sends one behavioural event into a project's pipeline, as
// a publishable key would, for an operator to watch it flow.
type SendTestEvent struct{ ProjectID string }

// Created is what a create (or a revoke) leaves behind. Visible reports
// whether the read model shows it yet; when it does not (the projection is
// behind by more than the consistency timeout), Value is built from the
// command, which is stored and will be applied.
type Created[T any] struct {
	Value   *T
	Visible bool
}

// CreatedKey is a new key with its plaintext, which is returned here once
// and kept nowhere.
type CreatedKey struct {
	Created[readmodel.APIKey]
	Plaintext string
}

type tenancy struct {
	send    CommandSender
	read    *queries.Queries
	wait    time.Duration
	metrics Metrics
}

// store sends a command; its validation failing is the caller's mistake.
func (t *tenancy) store(ctx context.Context, cmd commands.Command) error {
	err := t.send.Send(ctx, cmd)
	var fe *domain.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return invalidInput(err)
	default:
		return unavailable("the command log (NATS JetStream)", err)
	}
}

// await polls until visible reports true or the consistency timeout
// passes: a create that answers visible promises a read right after sees it.
func (t *tenancy) await(ctx context.Context, visible func(context.Context) (bool, error)) bool {
	ctx, cancel := context.WithTimeout(ctx, t.wait)
	defer cancel()
	wait := 2 * time.Millisecond
	for {
		if ok, err := visible(ctx); err == nil && ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// lookup maps a read-model lookup's failure.
func lookup(err error, what, id string) error {
	if errors.Is(err, queries.ErrNotFound) {
		return notFound(what, id)
	}
	return unavailable("the read model database", err)
}

func (t *tenancy) createOrganization(ctx context.Context, c CreateOrganization) (Created[readmodel.Organization], error) {
	var out Created[readmodel.Organization]
	if err := domain.CheckName("name", c.Name); err != nil {
		return out, invalidInput(err)
	}
	cmd := &commands.CreateOrganization{Header: commands.NewHeader(CorrelationID(ctx)), OrganizationID: domain.NewID(), Name: c.Name}
	if err := t.store(ctx, cmd); err != nil {
		return out, err
	}
	out.Visible = t.await(ctx, func(ctx context.Context) (bool, error) {
		o, err := t.read.Organization(ctx, cmd.OrganizationID)
		out.Value = o
		return err == nil, err
	})
	if !out.Visible {
		out.Value = &readmodel.Organization{ID: cmd.OrganizationID, Name: c.Name, CreatedAt: cmd.IssuedAt}
	}
	return out, nil
}

func (t *tenancy) createProject(ctx context.Context, c CreateProject) (Created[readmodel.Project], error) {
	var out Created[readmodel.Project]
	if err := domain.CheckName("name", c.Name); err != nil {
		return out, invalidInput(err)
	}
	if _, err := t.read.Organization(ctx, c.OrganizationID); err != nil {
		return out, lookup(err, "organization", c.OrganizationID)
	}
	cmd := &commands.CreateProject{Header: commands.NewHeader(CorrelationID(ctx)), ProjectID: domain.NewID(),
		OrganizationID: c.OrganizationID, Name: c.Name}
	if err := t.store(ctx, cmd); err != nil {
		return out, err
	}
	out.Visible = t.await(ctx, func(ctx context.Context) (bool, error) {
		p, err := t.read.Project(ctx, cmd.ProjectID)
		out.Value = p
		return err == nil, err
	})
	if !out.Visible {
		out.Value = &readmodel.Project{ID: cmd.ProjectID, OrganizationID: c.OrganizationID, Name: c.Name, CreatedAt: cmd.IssuedAt}
	}
	return out, nil
}

func (t *tenancy) createKey(ctx context.Context, c CreateKey) (CreatedKey, error) {
	var out CreatedKey
	if err := domain.CheckName("name", c.Name); err != nil {
		return out, invalidInput(err)
	}
	if !c.Type.Valid() {
		return out, invalid("type", `type must be "publishable" or "secret"`)
	}
	if _, err := t.read.Project(ctx, c.ProjectID); err != nil {
		return out, lookup(err, "project", c.ProjectID)
	}
	key, err := domain.GenerateKey(c.Type)
	if err != nil {
		return out, unavailable("key generation", err)
	}
	cmd := &commands.CreateKey{Header: commands.NewHeader(CorrelationID(ctx)), ProjectID: c.ProjectID,
		KeyID: domain.NewID(), Name: c.Name, Type: c.Type, Hash: key.Hash, Prefix: key.Prefix}
	if err := t.store(ctx, cmd); err != nil {
		return out, err
	}
	out.Visible = t.await(ctx, func(ctx context.Context) (bool, error) {
		k, err := t.read.APIKey(ctx, c.ProjectID, cmd.KeyID)
		out.Value = k
		return err == nil, err
	})
	if !out.Visible {
		out.Value = &readmodel.APIKey{ID: cmd.KeyID, ProjectID: c.ProjectID, Name: c.Name, Type: string(c.Type),
			Prefix: key.Prefix, CreatedAt: cmd.IssuedAt}
	}
	out.Plaintext = key.Plaintext
	return out, nil
}

func (t *tenancy) revokeKey(ctx context.Context, c RevokeKey) (Created[readmodel.APIKey], error) {
	out := Created[readmodel.APIKey]{Visible: true}
	k, err := t.read.APIKey(ctx, c.ProjectID, c.KeyID)
	if err != nil {
		return out, lookup(err, "api key", c.KeyID)
	}
	out.Value = k
	if k.RevokedAt != nil {
		return out, nil
	}
	cmd := &commands.RevokeKey{Header: commands.NewHeader(CorrelationID(ctx)), ProjectID: c.ProjectID, KeyID: c.KeyID}
	if err := t.store(ctx, cmd); err != nil {
		return out, err
	}
	out.Visible = t.await(ctx, func(ctx context.Context) (bool, error) {
		x, err := t.read.APIKey(ctx, c.ProjectID, c.KeyID)
		if err == nil && x.RevokedAt != nil {
			out.Value = x
			return true, nil
		}
		return false, err
	})
	return out, nil
}

// DashboardKeyID is the key id test events carry: they are sent by the
// operator, not by any API key of the project.
func DashboardKeyID(projectID string) string {
	return domain.EventIDFor(projectID, "boost-dashboard-test-key")
}

func (t *tenancy) sendTestEvent(ctx context.Context, c SendTestEvent) (string, error) {
	p, err := t.read.Project(ctx, c.ProjectID)
	if err != nil {
		return "", lookup(err, "project", c.ProjectID)
	}
	now := time.Now().UTC()
	cmd := &commands.TrackEvent{Header: commands.NewHeader(CorrelationID(ctx)), EventID: domain.NewID(),
		ProjectID: c.ProjectID, OrganizationID: p.OrganizationID, OccurredAt: now,
		Event: domain.TrackedData{Event: "dashboard_test", AnonymousID: "dashboard",
			Properties: []byte(`{"source":"boost dashboard"}`), ReceivedAt: now,
			KeyID: DashboardKeyID(c.ProjectID), KeyType: domain.KeyPublishable}}
	if err := t.store(ctx, cmd); err != nil {
		return "", err
	}
	t.metrics.Ingested("accepted", 1)
	return cmd.EventID, nil
}
