package api

import (
	"context"
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
		return errBadRequest(verr.Field, "%s %s", verr.Field, verr.Reason)
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

func (s *Server) createOrganization(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if e := decodeBody(w, r, &body); e != nil {
		writeError(w, e)
		return
	}
	if err := commands.ValidateName("name", body.Name); err != nil {
		writeError(w, validationToAPI(err))
		return
	}
	cmd := &commands.CreateOrganization{Header: commands.NewHeader(CorrelationID(r.Context())),
		OrganizationID: domain.NewID(), Name: body.Name}
	if e := s.send(r.Context(), cmd); e != nil {
		writeError(w, e)
		return
	}
	var org *readmodel.Organization
	visible := s.awaitReadModel(r.Context(), func(ctx context.Context) (bool, error) {
		o, err := s.cfg.Queries.Organization(ctx, cmd.OrganizationID)
		org = o
		return err == nil, err
	})
	if !visible {
		org = &readmodel.Organization{ID: cmd.OrganizationID, Name: body.Name, CreatedAt: cmd.IssuedAt}
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
	var body struct {
		Name string `json:"name"`
	}
	if e := decodeBody(w, r, &body); e != nil {
		writeError(w, e)
		return
	}
	if err := commands.ValidateName("name", body.Name); err != nil {
		writeError(w, validationToAPI(err))
		return
	}
	if _, err := s.cfg.Queries.Organization(r.Context(), orgID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "organization", orgID))
		return
	}
	cmd := &commands.CreateProject{Header: commands.NewHeader(CorrelationID(r.Context())),
		ProjectID: domain.NewID(), OrganizationID: orgID, Name: body.Name}
	if e := s.send(r.Context(), cmd); e != nil {
		writeError(w, e)
		return
	}
	var p *readmodel.Project
	visible := s.awaitReadModel(r.Context(), func(ctx context.Context) (bool, error) {
		x, err := s.cfg.Queries.Project(ctx, cmd.ProjectID)
		p = x
		return err == nil, err
	})
	if !visible {
		p = &readmodel.Project{ID: cmd.ProjectID, OrganizationID: orgID, Name: body.Name, CreatedAt: cmd.IssuedAt}
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
	var body struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if e := decodeBody(w, r, &body); e != nil {
		writeError(w, e)
		return
	}
	if err := commands.ValidateName("name", body.Name); err != nil {
		writeError(w, validationToAPI(err))
		return
	}
	keyType := domain.KeyType(body.Type)
	if !keyType.Valid() {
		writeError(w, errBadRequest("type", `type must be "publishable" or "secret"`))
		return
	}
	if _, err := s.cfg.Queries.Project(r.Context(), projectID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "project", projectID))
		return
	}
	key, err := domain.GenerateKey(keyType)
	if err != nil {
		writeError(w, errUnavailable("key generation"))
		return
	}
	cmd := &commands.CreateKey{Header: commands.NewHeader(CorrelationID(r.Context())), ProjectID: projectID,
		KeyID: domain.NewID(), Name: body.Name, Type: keyType, Hash: key.Hash, Prefix: key.Prefix}
	if e := s.send(r.Context(), cmd); e != nil {
		writeError(w, e)
		return
	}
	var k *readmodel.APIKey
	visible := s.awaitReadModel(r.Context(), func(ctx context.Context) (bool, error) {
		x, err := s.cfg.Queries.APIKey(ctx, projectID, cmd.KeyID)
		k = x
		return err == nil, err
	})
	if !visible {
		k = &readmodel.APIKey{ID: cmd.KeyID, ProjectID: projectID, Name: body.Name, Type: string(keyType),
			Prefix: key.Prefix, CreatedAt: cmd.IssuedAt}
	}
	s.answerCreated(w, visible, createdKey{keyView: viewKey(k), Key: key.Plaintext})
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
	k, err := s.cfg.Queries.APIKey(r.Context(), projectID, keyID)
	if err != nil {
		writeError(w, s.lookupError(r.Context(), err, "api key", keyID))
		return
	}
	if k.RevokedAt != nil {
		writeJSON(w, http.StatusOK, viewKey(k))
		return
	}
	cmd := &commands.RevokeKey{Header: commands.NewHeader(CorrelationID(r.Context())), ProjectID: projectID, KeyID: keyID}
	if e := s.send(r.Context(), cmd); e != nil {
		writeError(w, e)
		return
	}
	visible := s.awaitReadModel(r.Context(), func(ctx context.Context) (bool, error) {
		x, err := s.cfg.Queries.APIKey(ctx, projectID, keyID)
		if err == nil && x.RevokedAt != nil {
			k = x
			return true, nil
		}
		return false, err
	})
	if !visible {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, viewKey(k))
		return
	}
	writeJSON(w, http.StatusOK, viewKey(k))
}

func validationToAPI(err error) *Error {
	var verr *commands.ValidationError
	if errors.As(err, &verr) {
		return errBadRequest(verr.Field, "%s %s", verr.Field, verr.Reason)
	}
	return errBadRequest("", "%v", err)
}
