package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
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
	s.cfg.Log.ErrorContext(ctx, "read model query failed", "requestId", app.RequestID(ctx), "err", err)
	return errUnavailable("the read model database")
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
	org, err := s.app.Commands.CreateOrganization.Handle(r.Context(), app.CreateOrganization{Name: name})
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	s.answerCreated(w, org.Visible, org.Value)
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	page, e := pageFrom(r)
	if e != nil {
		writeError(w, e)
		return
	}
	orgs, next, err := s.app.Queries.Read.Organizations(r.Context(), page)
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
	org, err := s.app.Queries.Read.Organization(r.Context(), id)
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
	p, err := s.app.Commands.CreateProject.Handle(r.Context(), app.CreateProject{OrganizationID: orgID, Name: name})
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	s.answerCreated(w, p.Visible, p.Value)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	orgID, page, ok := idAndPage(w, r, "orgId")
	if !ok {
		return
	}
	if _, err := s.app.Queries.Read.Organization(r.Context(), orgID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "organization", orgID))
		return
	}
	ps, next, err := s.app.Queries.Read.Projects(r.Context(), orgID, page)
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
	p, err := s.app.Queries.Read.Project(r.Context(), id)
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
	k, err := s.app.Commands.CreateKey.Handle(r.Context(), app.CreateKey{ProjectID: projectID, Name: name, Type: domain.KeyType(typ)})
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	s.answerCreated(w, k.Visible, createdKey{keyView: viewKey(k.Value), Key: k.Plaintext})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	projectID, page, ok := idAndPage(w, r, "projectId")
	if !ok {
		return
	}
	if _, err := s.app.Queries.Read.Project(r.Context(), projectID); err != nil {
		writeError(w, s.lookupError(r.Context(), err, "project", projectID))
		return
	}
	keys, next, err := s.app.Queries.Read.APIKeys(r.Context(), projectID, page)
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
	k, err := s.app.Queries.Read.APIKey(r.Context(), projectID, keyID)
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
	k, err := s.app.Commands.RevokeKey.Handle(r.Context(), app.RevokeKey{ProjectID: projectID, KeyID: keyID})
	if err != nil {
		writeError(w, fromApp(err))
		return
	}
	if !k.Visible {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, viewKey(k.Value))
		return
	}
	writeJSON(w, http.StatusOK, viewKey(k.Value))
}

func validationToAPI(err error) *Error {
	var verr *domain.FieldError
	if errors.As(err, &verr) {
		return errBadRequest(verr.Field, "%s", verr.Error())
	}
	return errBadRequest("", "%v", err)
}
