// Package queries answers reads from the read models. It never publishes
// commands and never writes.
package queries

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// ErrNotFound is returned when the asked-for row does not exist (or belongs
// to another tenant, which is the same thing to the caller).
var ErrNotFound = errors.New("not found")

// ErrBadCursor is returned for a cursor this server did not issue.
var ErrBadCursor = errors.New("malformed cursor")

// Page asks for one page of a list. Cursor is the opaque nextCursor of the
// previous page, empty for the first.
type Page struct {
	Limit  int
	Cursor string
}

// DefaultLimit and MaxLimit bound list pages.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

type cursor struct {
	After string `json:"a"`
}

func encodeCursor(after string) string {
	b, _ := json.Marshal(cursor{After: after})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", ErrBadCursor
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return "", ErrBadCursor
	}
	id, err := domain.ParseID(c.After)
	if err != nil {
		return "", ErrBadCursor
	}
	return id, nil
}

// Queries reads the read models.
type Queries struct {
	db  *store.DB
	idb bun.IDB // db, or the transaction of InProject
}

// New returns queries over db.
func New(db *store.DB) *Queries { return &Queries{db: db, idb: db.DB} }

// ReaderRole is the PostgreSQL role project-scoped reads run as; row-level
// security policies on it hide every other project's rows.
const ReaderRole = "boost_reader"

// InProject runs fn with queries confined to one project: on PostgreSQL in
// a read-only transaction as ReaderRole with boost.project_id set, so even
// a query that forgot its project filter sees only this project's rows.
func (q *Queries) InProject(ctx context.Context, projectID string, fn func(ctx context.Context, q *Queries) error) error {
	if q.db.Dialect != store.Postgres {
		return fn(ctx, q)
	}
	return q.db.RunInTx(ctx, &sql.TxOptions{ReadOnly: true}, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+ReaderRole); err != nil {
			return fmt.Errorf("assuming %s: %w", ReaderRole, err)
		}
		if _, err := tx.ExecContext(ctx, "SELECT set_config('boost.project_id', ?, true)", projectID); err != nil {
			return fmt.Errorf("scoping to project: %w", err)
		}
		return fn(ctx, &Queries{db: q.db, idb: tx})
	})
}

func one(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// Organization returns one organization.
func (q *Queries) Organization(ctx context.Context, id string) (*readmodel.Organization, error) {
	var o readmodel.Organization
	err := q.idb.NewSelect().Model(&o).Where("id = ?", id).Scan(ctx)
	return &o, one(err)
}

// Project returns one project.
func (q *Queries) Project(ctx context.Context, id string) (*readmodel.Project, error) {
	var p readmodel.Project
	err := q.idb.NewSelect().Model(&p).Where("id = ?", id).Scan(ctx)
	return &p, one(err)
}

// APIKey returns one key of a project.
func (q *Queries) APIKey(ctx context.Context, projectID, keyID string) (*readmodel.APIKey, error) {
	var k readmodel.APIKey
	err := q.idb.NewSelect().Model(&k).Where("id = ?", keyID).Where("project_id = ?", projectID).Scan(ctx)
	return &k, one(err)
}

// paginate lists rows of model ordered by id (UUIDv7: creation order),
// returning the cursor of the next page when there is one.
func paginate[T any](ctx context.Context, db bun.IDB, p Page, id func(*T) string, filter func(*bun.SelectQuery) *bun.SelectQuery) ([]T, string, error) {
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows := make([]T, 0, limit+1)
	q := filter(db.NewSelect().Model(&rows)).OrderExpr("id ASC").Limit(int64(limit) + 1)
	if after != "" {
		q = q.Where("id > ?", after)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, "", fmt.Errorf("listing: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor(id(&rows[limit-1]))
	}
	return rows, next, nil
}

// Organizations lists organizations.
func (q *Queries) Organizations(ctx context.Context, p Page) ([]readmodel.Organization, string, error) {
	return paginate(ctx, q.idb, p, func(o *readmodel.Organization) string { return o.ID },
		func(s *bun.SelectQuery) *bun.SelectQuery { return s })
}

// Projects lists the projects of one organization.
func (q *Queries) Projects(ctx context.Context, orgID string, p Page) ([]readmodel.Project, string, error) {
	return paginate(ctx, q.idb, p, func(x *readmodel.Project) string { return x.ID },
		func(s *bun.SelectQuery) *bun.SelectQuery { return s.Where("organization_id = ?", orgID) })
}

// APIKeys lists the keys of one project, revoked ones included.
func (q *Queries) APIKeys(ctx context.Context, projectID string, p Page) ([]readmodel.APIKey, string, error) {
	return paginate(ctx, q.idb, p, func(x *readmodel.APIKey) string { return x.ID },
		func(s *bun.SelectQuery) *bun.SelectQuery { return s.Where("project_id = ?", projectID) })
}

// APIKeyByHash returns the key with this hash, revoked or not.
func (q *Queries) APIKeyByHash(ctx context.Context, hash string) (*readmodel.APIKey, error) {
	var k readmodel.APIKey
	err := q.idb.NewSelect().Model(&k).Where("key_hash = ?", hash).Scan(ctx)
	return &k, one(err)
}

// Event returns one event of a project.
func (q *Queries) Event(ctx context.Context, projectID, eventID string) (*readmodel.Event, error) {
	var e readmodel.Event
	err := q.idb.NewSelect().Model(&e).Where("id = ?", eventID).Where(q.inProject(), projectID).Scan(ctx)
	e.ProjectID = projectID // the column holds its key
	return &e, one(err)
}

// EndUser returns one end user of a project.
func (q *Queries) EndUser(ctx context.Context, projectID, externalID string) (*readmodel.EndUser, error) {
	var u readmodel.EndUser
	err := q.idb.NewSelect().Model(&u).Where(q.inProject(), projectID).Where("external_id = ?", externalID).Scan(ctx)
	u.ProjectID = projectID // the column holds its key
	return &u, one(err)
}

// inProject is the condition on a read model table's project_id that
// keeps one project's rows, given the project's UUID as its argument: the
// events projection's tables key a project as store.ProjectKeySQL says.
func (q *Queries) inProject() string { return "project_id = " + store.ProjectKeySQL("?") }

// DB is what these queries run on: the database, or InProject's
// transaction. Tests use it to show what a raw query can see.
func (q *Queries) DB() bun.IDB { return q.idb }
