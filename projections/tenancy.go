package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

var sqlErrNoRows = sql.ErrNoRows

// KeyRevocations is told, after a revocation is committed, which key hash
// must stop authenticating, so API caches drop it at once instead of at
// their TTL.
type KeyRevocations interface {
	Revoked(ctx context.Context, keyHash string)
}

// Tenancy projects organizations, projects, API keys and key usage.
type Tenancy struct {
	topic   string
	revoked KeyRevocations
}

// NewTenancy returns the tenancy projection reading topic; revoked may be
// nil.
func NewTenancy(topic string, revoked KeyRevocations) *Tenancy {
	return &Tenancy{topic: topic, revoked: revoked}
}

// AfterCommit implements AfterCommitter: it invalidates revoked keys once
// the read model says they are revoked, so a cache refill cannot bring the
// old row back.
func (t *Tenancy) AfterCommit(ctx context.Context, events []domain.Event) {
	if t.revoked == nil {
		return
	}
	for i := range events {
		if events[i].Type != domain.APIKeyRevoked {
			continue
		}
		if d, err := domain.DecodeData[domain.APIKeyRevokedData](&events[i]); err == nil {
			t.revoked.Revoked(ctx, d.Hash)
		}
	}
}

// Name implements Projection.
func (*Tenancy) Name() string { return "tenancy" }

// Topics implements Projection.
func (t *Tenancy) Topics() []string { return []string{t.topic} }

// Tables implements Projection.
func (*Tenancy) Tables() []string { return []string{"organizations", "projects", "api_keys"} }

// Apply implements Projection. Inserts ignore rows that exist and a revoke
// only sets revoked_at once, so a re-delivered event changes nothing.
func (t *Tenancy) Apply(ctx context.Context, tx bun.Tx, _ *store.DB, events []domain.Event) error {
	for i := range events {
		e := &events[i]
		if err := t.apply(ctx, tx, e); err != nil {
			return fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
		}
	}
	return nil
}

func (t *Tenancy) apply(ctx context.Context, tx bun.Tx, e *domain.Event) error {
	switch e.Type {
	case domain.OrganizationCreated:
		d, err := domain.DecodeData[domain.OrganizationCreatedData](e)
		if err != nil {
			return err
		}
		if err := errors.Join(checkIDs(e.AggregateID), checkText(d.Name)); err != nil {
			return err
		}
		_, err = tx.NewInsert().Model(&readmodel.Organization{ID: e.AggregateID, Name: d.Name, CreatedAt: e.OccurredAt}).
			On("CONFLICT (id) DO NOTHING").Exec(ctx)
		return err
	case domain.ProjectCreated:
		d, err := domain.DecodeData[domain.ProjectCreatedData](e)
		if err != nil {
			return err
		}
		if err := errors.Join(checkIDs(e.AggregateID, e.OrganizationID), checkText(d.Name)); err != nil {
			return err
		}
		_, err = tx.NewInsert().Model(&readmodel.Project{ID: e.AggregateID, OrganizationID: e.OrganizationID,
			Name: d.Name, CreatedAt: e.OccurredAt}).On("CONFLICT (id) DO NOTHING").Exec(ctx)
		return err
	case domain.APIKeyCreated:
		d, err := domain.DecodeData[domain.APIKeyCreatedData](e)
		if err != nil {
			return err
		}
		if err := errors.Join(checkIDs(d.KeyID, e.ProjectID, e.OrganizationID),
			checkText(d.Name, string(d.Type), d.Hash, d.Prefix)); err != nil {
			return err
		}
		_, err = tx.NewInsert().Model(&readmodel.APIKey{ID: d.KeyID, ProjectID: e.ProjectID,
			OrganizationID: e.OrganizationID, Name: d.Name, Type: string(d.Type), KeyHash: d.Hash,
			Prefix: d.Prefix, CreatedAt: e.OccurredAt}).On("CONFLICT (id) DO NOTHING").Exec(ctx)
		return err
	case domain.APIKeyRevoked:
		d, err := domain.DecodeData[domain.APIKeyRevokedData](e)
		if err != nil {
			return err
		}
		if err := checkIDs(d.KeyID, e.ProjectID); err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model((*readmodel.APIKey)(nil)).
			Set("revoked_at = ?", e.OccurredAt).
			Where("id = ?", d.KeyID).Where("project_id = ?", e.ProjectID).Where("revoked_at IS NULL").
			Exec(ctx)
		return err
	case domain.APIKeyUsed:
		d, err := domain.DecodeData[domain.KeyUsedData](e)
		if err != nil {
			return err
		}
		if err := checkIDs(d.KeyID); err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model((*readmodel.APIKey)(nil)).
			Set("last_used_at = ?", d.LastUsedAt).
			Where("id = ?", d.KeyID).Where("last_used_at IS NULL OR last_used_at < ?", d.LastUsedAt).
			Exec(ctx)
		return err
	}
	return nil
}
