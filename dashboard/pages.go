package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/readmodel"
)

func pageOf(limit int) queries.Page { return queries.Page{Limit: limit} }

// projectCtx is the project a /dashboard/projects/{id}/… page is about.
type projectCtx struct {
	project *readmodel.Project
	org     *readmodel.Organization
	base    string
}

// view starts a page of this project.
func (pc *projectCtx) view(title, nav string) *view {
	return &view{Title: title + " · " + pc.project.Name, Heading: title, Nav: nav, Project: pc.project, Org: pc.org, Base: pc.base}
}

// project resolves the path's project (a 404 page when there is none) for
// a signed-in session.
func (d *Dashboard) project(fn func(http.ResponseWriter, *http.Request, *projectCtx)) http.Handler {
	return d.authed(func(w http.ResponseWriter, r *http.Request) {
		raw := mux.Vars(r)["projectId"]
		id, err := domain.ParseID(raw)
		if err != nil {
			d.renderError(w, r, http.StatusNotFound, "Project not found", "There is no project "+raw+".")
			return
		}
		p, err := d.cfg.App.Queries.Read.Project(r.Context(), id)
		if err != nil {
			d.queryFailed(w, r, err, "Project not found", "There is no project "+id+".")
			return
		}
		org, err := d.cfg.App.Queries.Read.Organization(r.Context(), p.OrganizationID)
		if err != nil {
			d.queryFailed(w, r, err, "Organization not found", "The project's organization is missing.")
			return
		}
		fn(w, r, &projectCtx{project: p, org: org, base: "/dashboard/projects/" + id})
	})
}

// read runs fn with queries confined to the project (row-level security
// on PostgreSQL), exactly as the read API does.
func (d *Dashboard) read(ctx context.Context, pc *projectCtx, fn func(ctx context.Context, q *queries.Queries) error) error {
	return d.cfg.App.Queries.Read.InProject(ctx, pc.project.ID, fn)
}

// queryFailed answers a read error: a 404 page for a missing row, else a
// 503 page naming the database.
func (d *Dashboard) queryFailed(w http.ResponseWriter, r *http.Request, err error, title, notFound string) {
	if errors.Is(err, queries.ErrNotFound) {
		d.renderError(w, r, http.StatusNotFound, title, notFound)
		return
	}
	if errors.Is(err, queries.ErrBadCursor) {
		d.renderError(w, r, http.StatusBadRequest, "Bad page link", "That page link is not one this dashboard issued; go back to the first page.")
		return
	}
	d.cfg.Log.ErrorContext(r.Context(), "dashboard read failed", "requestId", app.RequestID(r.Context()), "err", err)
	d.renderError(w, r, http.StatusServiceUnavailable, "Database unavailable",
		"The read-model database did not answer. Nothing was lost: events keep flowing into the log. Retry shortly.")
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Projects", Nav: "overview", Sidebar: d.sidebar(r)}
	if n := r.URL.Query().Get("created"); n != "" {
		v.Notice = "Organization " + n + " created. Add a project to it below."
	}
	d.render(w, r, http.StatusOK, "overview", v)
}

func (d *Dashboard) createOrganization(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	org, err := d.cfg.App.Commands.CreateOrganization.Handle(r.Context(), app.CreateOrganization{Name: name})
	if err != nil {
		status, msg := opMessage(err)
		d.render(w, r, status, "overview", &view{Title: "Projects", Nav: "overview", Error: "Could not create the organization: " + msg})
		return
	}
	http.Redirect(w, r, "/dashboard/?created="+url.QueryEscape(org.Value.Name), http.StatusSeeOther)
}

func (d *Dashboard) createProject(w http.ResponseWriter, r *http.Request) {
	orgID, err := domain.ParseID(mux.Vars(r)["orgId"])
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "Organization not found", "There is no such organization.")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	p, err := d.cfg.App.Commands.CreateProject.Handle(r.Context(), app.CreateProject{OrganizationID: orgID, Name: name})
	if err != nil {
		status, msg := opMessage(err)
		d.render(w, r, status, "overview", &view{Title: "Projects", Nav: "overview", Error: "Could not create the project: " + msg})
		return
	}
	http.Redirect(w, r, "/dashboard/projects/"+p.Value.ID+"/start?created=1", http.StatusSeeOther)
}

// eventFilters are the live tail's filters, from the query string.
type eventFilters struct {
	Type   string
	User   string
	Status string
}

func filtersOf(r *http.Request) eventFilters {
	q := r.URL.Query()
	return eventFilters{Type: strings.TrimSpace(q.Get("type")), User: strings.TrimSpace(q.Get("user")),
		Status: strings.TrimSpace(q.Get("status"))}
}

func (f eventFilters) query() queries.EventFilter {
	return queries.EventFilter{Types: queries.SplitNames(f.Type), UserID: f.User, Status: f.Status}
}

func (d *Dashboard) eventsPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	f := filtersOf(r)
	v := pc.view("Live events", "events")
	switch f.Status {
	case "", readmodel.StatusPending, readmodel.StatusProcessed, readmodel.StatusFailed:
	default:
		v.Error = "Status must be pending, processed or failed."
		f.Status = ""
	}
	var events []readmodel.Event
	var next string
	err := d.read(r.Context(), pc, func(ctx context.Context, q *queries.Queries) error {
		var err error
		events, next, err = q.Events(ctx, pc.project.ID, f.query(), queries.Page{Limit: 50, Cursor: r.URL.Query().Get("cursor")})
		return err
	})
	if err != nil {
		d.queryFailed(w, r, err, "Events not found", "")
		return
	}
	if n := r.URL.Query().Get("sent"); n != "" {
		v.Notice = "Test event sent. It appears below as soon as the pipeline has it."
	}
	v.Data = map[string]any{"Events": events, "Next": next, "Filters": f, "Live": d.cfg.Feed != nil,
		"Paged": r.URL.Query().Get("cursor") != ""}
	d.render(w, r, http.StatusOK, "events", v)
}

func (d *Dashboard) eventPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	id, err := domain.ParseID(mux.Vars(r)["eventId"])
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "Event not found", "There is no such event in this project.")
		return
	}
	var e *readmodel.Event
	err = d.read(r.Context(), pc, func(ctx context.Context, q *queries.Queries) error {
		var err error
		e, err = q.Event(ctx, pc.project.ID, id)
		return err
	})
	if err != nil {
		d.queryFailed(w, r, err, "Event not found",
			"There is no event "+id+" in this project yet. Events appear once the pipeline has processed them.")
		return
	}
	v := pc.view("Event "+e.Type, "events")
	v.Data = e
	d.render(w, r, http.StatusOK, "event", v)
}

func (d *Dashboard) testEvent(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	id, err := d.cfg.App.Commands.SendTestEvent.Handle(r.Context(), app.SendTestEvent{ProjectID: pc.project.ID})
	wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	if err != nil {
		status, msg := opMessage(err)
		if wantsJSON {
			writeJSON(w, status, map[string]any{"error": map[string]string{"message": msg}})
			return
		}
		d.renderError(w, r, status, "Test event not sent", msg)
		return
	}
	if wantsJSON {
		writeJSON(w, http.StatusAccepted, map[string]string{"eventId": id})
		return
	}
	http.Redirect(w, r, pc.base+"/events?sent=1", http.StatusSeeOther)
}

func (d *Dashboard) usersPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	prefix := strings.TrimSpace(r.URL.Query().Get("q"))
	var users []readmodel.EndUser
	var next string
	err := d.read(r.Context(), pc, func(ctx context.Context, q *queries.Queries) error {
		var err error
		users, next, err = q.EndUsers(ctx, pc.project.ID, queries.UserFilter{Prefix: prefix},
			queries.Page{Limit: 50, Cursor: r.URL.Query().Get("cursor")})
		return err
	})
	if err != nil {
		d.queryFailed(w, r, err, "Users not found", "")
		return
	}
	v := pc.view("End users", "users")
	v.Data = map[string]any{"Users": users, "Next": next, "Query": prefix, "Paged": r.URL.Query().Get("cursor") != ""}
	d.render(w, r, http.StatusOK, "users", v)
}

func (d *Dashboard) userPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	externalID := r.URL.Query().Get("id")
	if externalID == "" {
		http.Redirect(w, r, pc.base+"/users", http.StatusFound)
		return
	}
	var (
		u       *readmodel.EndUser
		aliases []string
		recent  []readmodel.Event
	)
	err := d.read(r.Context(), pc, func(ctx context.Context, q *queries.Queries) error {
		var err error
		if u, err = q.EndUser(ctx, pc.project.ID, externalID); err != nil {
			return err
		}
		if aliases, err = q.Aliases(ctx, pc.project.ID, externalID); err != nil {
			return err
		}
		recent, _, err = q.Events(ctx, pc.project.ID, queries.EventFilter{UserID: externalID}, pageOf(20))
		return err
	})
	if err != nil {
		d.queryFailed(w, r, err, "User not found",
			"No end user has the id "+externalID+" in this project. Users appear once an event or identify call names them.")
		return
	}
	v := pc.view("User "+externalID, "users")
	v.Data = map[string]any{"User": u, "Aliases": aliases, "Events": recent}
	d.render(w, r, http.StatusOK, "user", v)
}

func (d *Dashboard) listKeys(r *http.Request, pc *projectCtx) ([]readmodel.APIKey, error) {
	keys, _, err := d.cfg.App.Queries.Read.APIKeys(r.Context(), pc.project.ID, pageOf(queries.MaxLimit))
	return keys, err
}

func (d *Dashboard) keysPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	keys, err := d.listKeys(r, pc)
	if err != nil {
		d.queryFailed(w, r, err, "Keys not found", "")
		return
	}
	v := pc.view("API keys", "keys")
	if n := r.URL.Query().Get("revoked"); n != "" {
		v.Notice = "Key " + n + " is revoked: requests with it are refused from now on."
	}
	v.Data = map[string]any{"Keys": keys}
	d.render(w, r, http.StatusOK, "keys", v)
}

// newKey is a key just created: the only time its plaintext is shown.
type newKey struct {
	Key       *readmodel.APIKey
	Plaintext string
}

func (d *Dashboard) createKey(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	typ := domain.KeyType(r.PostFormValue("type"))
	v := pc.view("API keys", "keys")
	status := http.StatusCreated
	k, err := d.cfg.App.Commands.CreateKey.Handle(r.Context(), app.CreateKey{ProjectID: pc.project.ID, Name: name, Type: typ})
	var created *newKey
	if err != nil {
		var msg string
		status, msg = opMessage(err)
		v.Error = "Could not create the key: " + msg
	} else {
		created = &newKey{Key: k.Value, Plaintext: k.Plaintext}
	}
	keys, err := d.listKeys(r, pc)
	if err != nil {
		d.queryFailed(w, r, err, "Keys not found", "")
		return
	}
	if created != nil {
		name, typ = "", "" // a fresh form for the next key
	}
	v.Data = map[string]any{"Keys": keys, "New": created, "Name": name, "Type": string(typ)}
	d.render(w, r, status, "keys", v)
}

func (d *Dashboard) keyOf(w http.ResponseWriter, r *http.Request, pc *projectCtx) *readmodel.APIKey {
	const title, missing = "Key not found", "This project has no such API key."
	id, err := domain.ParseID(mux.Vars(r)["keyId"])
	if err != nil {
		d.queryFailed(w, r, queries.ErrNotFound, title, missing)
		return nil
	}
	k, err := d.cfg.App.Queries.Read.APIKey(r.Context(), pc.project.ID, id)
	if err != nil {
		// A missing key is a 404 page, a database outage a 503 one.
		d.queryFailed(w, r, err, title, missing)
		return nil
	}
	return k
}

func (d *Dashboard) revokePage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	k := d.keyOf(w, r, pc)
	if k == nil {
		return
	}
	v := pc.view("Revoke "+k.Name, "keys")
	v.Data = k
	d.render(w, r, http.StatusOK, "revoke", v)
}

func (d *Dashboard) revokeKey(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	k := d.keyOf(w, r, pc)
	if k == nil {
		return
	}
	if _, err := d.cfg.App.Commands.RevokeKey.Handle(r.Context(), app.RevokeKey{ProjectID: pc.project.ID, KeyID: k.ID}); err != nil {
		status, msg := opMessage(err)
		v := pc.view("Revoke "+k.Name, "keys")
		v.Error, v.Data = "Could not revoke the key: "+msg, k
		d.render(w, r, status, "revoke", v)
		return
	}
	http.Redirect(w, r, pc.base+"/keys?revoked="+url.QueryEscape(k.Name), http.StatusSeeOther)
}

// serverURL is the address SDKs should send to, as the browser reached us.
func serverURL(r *http.Request) string {
	scheme := "http"
	if isTLS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (d *Dashboard) startPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	d.renderStart(w, r, pc, http.StatusOK, nil, "")
}

func (d *Dashboard) startWithKey(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	created, err := d.cfg.App.Commands.CreateKey.Handle(r.Context(), app.CreateKey{ProjectID: pc.project.ID,
		Name: "Get started (browser)", Type: domain.KeyPublishable})
	k, plaintext := created.Value, created.Plaintext
	if err != nil {
		status, msg := opMessage(err)
		d.renderStart(w, r, pc, status, nil, "Could not create the key: "+msg)
		return
	}
	d.renderStart(w, r, pc, http.StatusCreated, &newKey{Key: k, Plaintext: plaintext}, "")
}

func (d *Dashboard) renderStart(w http.ResponseWriter, r *http.Request, pc *projectCtx, status int, created *newKey, errMsg string) {
	keys, err := d.listKeys(r, pc)
	if err != nil {
		d.queryFailed(w, r, err, "Keys not found", "")
		return
	}
	var publishable []readmodel.APIKey
	for _, k := range keys {
		if k.Type == string(domain.KeyPublishable) && k.RevokedAt == nil {
			publishable = append(publishable, k)
		}
	}
	key := "pk_live_…"
	if created != nil {
		key = created.Plaintext
	}
	v := pc.view("Get started", "start")
	if r.URL.Query().Get("created") != "" {
		v.Notice = "Project " + pc.project.Name + " created. Create a key and send your first event."
	}
	v.Error = errMsg
	server := serverURL(r)
	scheme, host, _ := strings.Cut(server, "://")
	v.Data = map[string]any{"New": created, "Key": key, "Server": server, "Publishable": publishable, "Scheme": scheme, "Host": host}
	d.render(w, r, status, "start", v)
}
