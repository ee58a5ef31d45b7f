package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/readmodel"
)

type listResponse[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// keyView is an API key as lists show it: never the plaintext or hash.
type keyView struct {
	ID         string     `json:"id"`
	ProjectID  string     `json:"projectId"`
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	Prefix     string     `json:"prefix"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"createdAt"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
}

func viewKey(k *readmodel.APIKey) keyView {
	status := "active"
	if k.RevokedAt != nil {
		status = "revoked"
	}
	return keyView{ID: k.ID, ProjectID: k.ProjectID, Name: k.Name, Type: k.Type, Prefix: k.Prefix,
		Status: status, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

// createdKey is the one response that carries a key's plaintext.
type createdKey struct {
	keyView
	Key string `json:"key"`
}

func pathID(r *http.Request, name string) (string, *Error) {
	raw := mux.Vars(r)[name]
	id, err := domain.ParseID(raw)
	if err != nil {
		return "", errBadRequest(name, "%s must be a UUID", name)
	}
	return id, nil
}

// writeList answers a page of rows, each shown through view.
func writeList[T, V any](w http.ResponseWriter, rows []T, next string, view func(*T) V) {
	views := make([]V, len(rows))
	for i := range rows {
		views[i] = view(&rows[i])
	}
	writeJSON(w, http.StatusOK, listResponse[V]{Data: views, NextCursor: next})
}

// idAndPage reads a path id and the page parameters of a list request,
// answering the error itself when either is wrong.
func idAndPage(w http.ResponseWriter, r *http.Request, name string) (string, queries.Page, bool) {
	id, e := pathID(r, name)
	if e == nil {
		var p queries.Page
		if p, e = pageFrom(r); e == nil {
			return id, p, true
		}
	}
	writeError(w, e)
	return "", queries.Page{}, false
}

func pageFrom(r *http.Request) (queries.Page, *Error) {
	q := r.URL.Query()
	p := queries.Page{Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > queries.MaxLimit {
			return p, errBadRequest("limit", "limit must be an integer from 1 to %d", queries.MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// send stores a command, mapping failures to API errors.
func (s *Server) send(ctx context.Context, cmd commands.Command) *Error {
	err := s.cfg.Commands.Send(ctx, cmd)
	var verr *commands.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verr):
		return validationToAPI(verr)
	case errors.Is(err, bus.ErrUnavailable):
		s.cfg.Log.WarnContext(ctx, "command not stored", "requestId", RequestID(ctx), "err", err)
		return errUnavailable("the command log (NATS JetStream)")
	default:
		s.cfg.Log.ErrorContext(ctx, "command send failed", "requestId", RequestID(ctx), "err", err)
		return errUnavailable("the command log (NATS JetStream)")
	}
}

// awaitReadModel polls until visible reports true or the consistency
// timeout passes: a 201 promises that a GET right after sees the resource.
func (s *Server) awaitReadModel(ctx context.Context, visible func(context.Context) (bool, error)) bool {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistencyTimeout)
	defer cancel()
	wait := 2 * time.Millisecond
	for {
		ok, err := visible(ctx)
		if err == nil && ok {
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

// answerCreated sends 201 when the read model shows the write, or 202 with
// the same body when the projection is lagging beyond the timeout: the
// command is stored and will be applied, the caller just cannot read it yet.
func (s *Server) answerCreated(w http.ResponseWriter, visible bool, body any) {
	if visible {
		writeJSON(w, http.StatusCreated, body)
		return
	}
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusAccepted, body)
}

// listError maps a list query's failure: a forged cursor is the caller's
// mistake (400), anything else the database's (503).
func (s *Server) listError(ctx context.Context, err error) *Error {
	if errors.Is(err, queries.ErrBadCursor) {
		return errBadRequest("cursor", "cursor is not one this server issued")
	}
	return s.lookupError(ctx, err, "", "")
}

func (s *Server) lookupError(ctx context.Context, err error, what, id string) *Error {
	if errors.Is(err, queries.ErrNotFound) {
		return errNotFound(what, id)
	}
	s.cfg.Log.ErrorContext(ctx, "read model query failed", "requestId", RequestID(ctx), "err", err)
	return errUnavailable("the read model database")
}

// CreateOrganization stores a new organization. visible reports whether
// the read model shows it yet (false: the projection is lagging beyond the
// consistency timeout; the returned row is built from the command).
func (s *Server) CreateOrganization(ctx context.Context, name string) (org *readmodel.Organization, visible bool, err error) {
	if err := commands.ValidateName("name", name); err != nil {
		return nil, false, validationToAPI(err)
	}
	cmd := &commands.CreateOrganization{Header: commands.NewHeader(CorrelationID(ctx)),
		OrganizationID: domain.NewID(), Name: name}
	if e := s.send(ctx, cmd); e != nil {
		return nil, false, e
	}
	visible = s.awaitReadModel(ctx, func(ctx context.Context) (bool, error) {
		o, err := s.cfg.Queries.Organization(ctx, cmd.OrganizationID)
		org = o
		return err == nil, err
	})
	if !visible {
		org = &readmodel.Organization{ID: cmd.OrganizationID, Name: name, CreatedAt: cmd.IssuedAt}
	}
	return org, visible, nil
}

// CreateProject stores a new project of an existing organization.
func (s *Server) CreateProject(ctx context.Context, orgID, name string) (p *readmodel.Project, visible bool, err error) {
	if err := commands.ValidateName("name", name); err != nil {
		return nil, false, validationToAPI(err)
	}
	if _, err := s.cfg.Queries.Organization(ctx, orgID); err != nil {
		return nil, false, s.lookupError(ctx, err, "organization", orgID)
	}
	cmd := &commands.CreateProject{Header: commands.NewHeader(CorrelationID(ctx)),
		ProjectID: domain.NewID(), OrganizationID: orgID, Name: name}
	if e := s.send(ctx, cmd); e != nil {
		return nil, false, e
	}
	visible = s.awaitReadModel(ctx, func(ctx context.Context) (bool, error) {
		x, err := s.cfg.Queries.Project(ctx, cmd.ProjectID)
		p = x
		return err == nil, err
	})
	if !visible {
		p = &readmodel.Project{ID: cmd.ProjectID, OrganizationID: orgID, Name: name, CreatedAt: cmd.IssuedAt}
	}
	return p, visible, nil
}

// CreateKey generates a key for a project and stores its hash. The
// plaintext is returned here once and kept nowhere.
func (s *Server) CreateKey(ctx context.Context, projectID, name string, keyType domain.KeyType) (k *readmodel.APIKey, plaintext string, visible bool, err error) {
	if err := commands.ValidateName("name", name); err != nil {
		return nil, "", false, validationToAPI(err)
	}
	if !keyType.Valid() {
		return nil, "", false, errBadRequest("type", `type must be "publishable" or "secret"`)
	}
	if _, err := s.cfg.Queries.Project(ctx, projectID); err != nil {
		return nil, "", false, s.lookupError(ctx, err, "project", projectID)
	}
	key, kerr := domain.GenerateKey(keyType)
	if kerr != nil {
		return nil, "", false, errUnavailable("key generation")
	}
	cmd := &commands.CreateKey{Header: commands.NewHeader(CorrelationID(ctx)), ProjectID: projectID,
		KeyID: domain.NewID(), Name: name, Type: keyType, Hash: key.Hash, Prefix: key.Prefix}
	if e := s.send(ctx, cmd); e != nil {
		return nil, "", false, e
	}
	visible = s.awaitReadModel(ctx, func(ctx context.Context) (bool, error) {
		x, err := s.cfg.Queries.APIKey(ctx, projectID, cmd.KeyID)
		k = x
		return err == nil, err
	})
	if !visible {
		k = &readmodel.APIKey{ID: cmd.KeyID, ProjectID: projectID, Name: name, Type: string(keyType),
			Prefix: key.Prefix, CreatedAt: cmd.IssuedAt}
	}
	return k, key.Plaintext, visible, nil
}

// RevokeKey revokes a key; revoking a revoked key is not an error.
// visible reports whether the read model shows the revocation yet.
func (s *Server) RevokeKey(ctx context.Context, projectID, keyID string) (k *readmodel.APIKey, visible bool, err error) {
	k, qerr := s.cfg.Queries.APIKey(ctx, projectID, keyID)
	if qerr != nil {
		return nil, false, s.lookupError(ctx, qerr, "api key", keyID)
	}
	if k.RevokedAt != nil {
		return k, true, nil
	}
	cmd := &commands.RevokeKey{Header: commands.NewHeader(CorrelationID(ctx)), ProjectID: projectID, KeyID: keyID}
	if e := s.send(ctx, cmd); e != nil {
		return nil, false, e
	}
	visible = s.awaitReadModel(ctx, func(ctx context.Context) (bool, error) {
		x, err := s.cfg.Queries.APIKey(ctx, projectID, keyID)
		if err == nil && x.RevokedAt != nil {
			k = x
			return true, nil
		}
		return false, err
	})
	return k, visible, nil
}

// DashboardKeyID is the key id test events sent from the dashboard carry:
// they are sent by the operator, not by any API key of the project.
func DashboardKeyID(projectID string) string {
	return domain.EventIDFor(projectID, "boost-dashboard-test-key")
}

// TrackTestEvent sends one behavioural event into projectID's pipeline, as
// a publishable key would, so an operator can watch it flow end to end.
func (s *Server) TrackTestEvent(ctx context.Context, projectID string) (eventID string, err error) {
	p, qerr := s.cfg.Queries.Project(ctx, projectID)
	if qerr != nil {
		return "", s.lookupError(ctx, qerr, "project", projectID)
	}
	now := time.Now().UTC()
	cmd := &commands.TrackEvent{Header: commands.NewHeader(CorrelationID(ctx)), EventID: domain.NewID(),
		ProjectID: projectID, OrganizationID: p.OrganizationID, OccurredAt: now,
		Event: domain.TrackedData{Event: "dashboard_test", AnonymousID: "dashboard",
			Properties: []byte(`{"source":"boost dashboard"}`), ReceivedAt: now,
			KeyID: DashboardKeyID(projectID), KeyType: domain.KeyPublishable}}
	if e := s.send(ctx, cmd); e != nil {
		return "", e
	}
	s.cfg.Metrics.Ingested("accepted", 1)
	return cmd.EventID, nil
}

// writeOpError answers an error of a management operation.
func writeOpError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = errUnavailable("the service")
	}
	writeError(w, e)
}

// nameBody is the body of the create requests. Its fields stay raw so
// text encoding/json would rewrite (invalid UTF-8) is refused instead.
type nameBody struct {
	Name json.RawMessage `json:"name"`
	Type json.RawMessage `json:"type"`
}

// UnmarshalJSON matches field names exactly, as wireEvent does.
func (b *nameBody) UnmarshalJSON(data []byte) error {
	return exactFields(data, map[string]*json.RawMessage{"name": &b.Name, "type": &b.Type})
}

// decodeNames reads a create body's name (and type).
func decodeNames(w http.ResponseWriter, r *http.Request) (name, typ string, e *Error) {
	var body nameBody
	if e := decodeBody(w, r, &body); e != nil {
		return "", "", e
	}
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		out  *string
	}{{body.Name, "name", &name}, {body.Type, "type", &typ}} {
		if isNull(f.raw) {
			continue
		}
		v, err := domain.DecodeString(f.name, f.raw)
		if err != nil {
			return "", "", validationToAPI(err)
		}
		*f.out = v
	}
	return name, typ, nil
}

func (s *Server) createOrganization(w http.ResponseWriter, r *http.Request) {
	name, _, e := decodeNames(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	org, visible, err := s.CreateOrganization(r.Context(), name)
	if err != nil {
		writeOpError(w, err)
		return
	}
	s.answerCreated(w, visible, org)
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	page, e := pageFrom(r)
	if e != nil {
		writeError(w, e)
		return
	}
	orgs, next, err := s.cfg.Queries.Organizations(r.Context(), page)
	if err != nil {
		writeError(w, s.listError(r.Context(), err))
		return
	}
	writeJSON(w, http.StatusOK, listResponse[readmodel.Organization]{Data: orgs, NextCursor: next})
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r, "orgId")
	if e != nil {
		writeError(w, e)
		return
	}
	org, err := s.cfg.Queries.Organization(r.Context(), id)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "organization", id))
		return
	}
	writeJSON(w, http.StatusOK, org)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	orgID, e := pathID(r, "orgId")
	if e != nil {
		writeError(w, e)
		return
	}
	name, _, e := decodeNames(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, visible, err := s.CreateProject(r.Context(), orgID, name)
	if err != nil {
		writeOpError(w, err)
		return
	}
	s.answerCreated(w, visible, p)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	orgID, page, ok := idAndPage(w, r, "orgId")
	if !ok {
		return
	}
	if _, err := s.cfg.Queries.Organization(r.Context(), orgID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "organization", orgID))
		return
	}
	ps, next, err := s.cfg.Queries.Projects(r.Context(), orgID, page)
	if err != nil {
		writeError(w, s.listError(r.Context(), err))
		return
	}
	writeJSON(w, http.StatusOK, listResponse[readmodel.Project]{Data: ps, NextCursor: next})
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	p, err := s.cfg.Queries.Project(r.Context(), id)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "project", id))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	projectID, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	name, typ, e := decodeNames(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	k, plaintext, visible, err := s.CreateKey(r.Context(), projectID, name, domain.KeyType(typ))
	if err != nil {
		writeOpError(w, err)
		return
	}
	s.answerCreated(w, visible, createdKey{keyView: viewKey(k), Key: plaintext})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	projectID, page, ok := idAndPage(w, r, "projectId")
	if !ok {
		return
	}
	if _, err := s.cfg.Queries.Project(r.Context(), projectID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "project", projectID))
		return
	}
	keys, next, err := s.cfg.Queries.APIKeys(r.Context(), projectID, page)
	if err != nil {
		writeError(w, s.listError(r.Context(), err))
		return
	}
	writeList(w, keys, next, viewKey)
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	projectID, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	keyID, e := pathID(r, "keyId")
	if e != nil {
		writeError(w, e)
		return
	}
	k, err := s.cfg.Queries.APIKey(r.Context(), projectID, keyID)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "api key", keyID))
		return
	}
	writeJSON(w, http.StatusOK, viewKey(k))
}

// revokeKey is idempotent: revoking a revoked key answers 200 again.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	projectID, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	keyID, e := pathID(r, "keyId")
	if e != nil {
		writeError(w, e)
		return
	}
	k, visible, err := s.RevokeKey(r.Context(), projectID, keyID)
	if err != nil {
		writeOpError(w, err)
		return
	}
	if !visible {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, viewKey(k))
		return
	}
	writeJSON(w, http.StatusOK, viewKey(k))
}

func validationToAPI(err error) *Error {
	var verr *domain.FieldError
	if errors.As(err, &verr) {
		return errBadRequest(verr.Field, "%s", verr.Error())
	}
	return errBadRequest("", "%v", err)
}
