// Package dashboard is Boost's admin web app, served by the API under
// /dashboard: sign-in with the admin token, organizations and projects, API
// keys, a live tail of events fed by the pipeline, analytics, end users,
// pipeline health and get-started snippets.
//
// Pages are rendered on the server with html/template (so every
// user-supplied string is escaped in one place); a little JavaScript adds
// the live tail, the charts and copy buttons. Its assets are embedded in
// the binary: there is no front-end build step.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/ratelimit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config wires the dashboard.
type Config struct {
	// AdminTokenSHA256 is the hex SHA-256 of the admin token that signs in.
	AdminTokenSHA256 string
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// App is every use case: the dashboard calls the same ones as the
	// HTTP API, so a key made here is made exactly like one made with POST
	// /v1/projects/{id}/api-keys.
	App *app.Application
	// Feed streams events to the live tail; nil disables it.
	Feed   Feed
	Health *Health
	// AuthFailures throttles wrong admin tokens per client address, shared
	// with the API; nil: no throttle.
	AuthFailures *ratelimit.Failures
	Log          *slog.Logger
	// Version is shown in the footer.
	Version string
}

// Dashboard is the /dashboard handler.
type Dashboard struct {
	cfg       Config
	adminHash []byte
	sessions  *Sessions
	pages     map[string]*template.Template
	router    *mux.Router

	// streams ends the live tails when the server shuts down, which
	// would otherwise wait for them.
	streamsCtx  context.Context
	stopStreams context.CancelFunc
}

// New builds the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	hash, err := hex.DecodeString(cfg.AdminTokenSHA256)
	if err != nil || len(hash) != sha256.Size {
		return nil, errors.New("dashboard: the admin token hash must be a hex SHA-256")
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{cfg: cfg, adminHash: hash, sessions: NewSessions(hash, cfg.SessionTTL), pages: pages,
		router: mux.NewRouter()}
	d.streamsCtx, d.stopStreams = context.WithCancel(context.Background())
	d.routes()
	return d, nil
}

// SignedIn reports whether r carries a valid dashboard session; the API
// takes it for project reads (api.Server.AcceptSessions).
func (d *Dashboard) SignedIn(r *http.Request) bool {
	_, ok := d.sessions.current(r)
	return ok
}

// Shutdown ends the live tails so the HTTP server can drain; register it
// with http.Server.RegisterOnShutdown.
func (d *Dashboard) Shutdown() { d.stopStreams() }

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	d.router.ServeHTTP(w, r)
}

func (d *Dashboard) routes() {
	r := d.router
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.renderError(w, r, http.StatusNotFound, "Page not found", "There is no dashboard page at "+r.URL.Path+".")
	})
	static, _ := fs.Sub(staticFS, "static")
	r.PathPrefix("/dashboard/static/").Handler(http.StripPrefix("/dashboard/static/",
		cacheStatic(http.FileServerFS(static)))).Methods(http.MethodGet)
	r.HandleFunc("/dashboard/login", d.loginPage).Methods(http.MethodGet)
	r.HandleFunc("/dashboard/login", d.login).Methods(http.MethodPost)
	r.Handle("/dashboard/logout", d.authed(d.logout)).Methods(http.MethodPost)
	r.Handle("/dashboard", http.RedirectHandler("/dashboard/", http.StatusFound)).Methods(http.MethodGet)
	r.Handle("/dashboard/", d.authed(d.overview)).Methods(http.MethodGet)
	r.Handle("/dashboard/organizations", d.authed(d.createOrganization)).Methods(http.MethodPost)
	r.Handle("/dashboard/organizations/{orgId}/projects", d.authed(d.createProject)).Methods(http.MethodPost)
	r.Handle("/dashboard/health", d.authed(d.healthPage)).Methods(http.MethodGet)
	r.Handle("/dashboard/health.json", d.authed(d.healthJSON)).Methods(http.MethodGet)
	r.Handle("/dashboard/quarantine", d.authed(d.quarantinePage)).Methods(http.MethodGet)
	r.Handle("/dashboard/quarantine/{id}", d.authed(d.quarantinedPage)).Methods(http.MethodGet)
	r.Handle("/dashboard/quarantine/{id}/reprocess", d.authed(d.reprocess)).Methods(http.MethodPost)

	p := "/dashboard/projects/{projectId}"
	r.Handle(p, d.project(func(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
		http.Redirect(w, r, pc.base+"/events", http.StatusFound)
	})).Methods(http.MethodGet)
	r.Handle(p+"/events", d.project(d.eventsPage)).Methods(http.MethodGet)
	r.Handle(p+"/events/stream", d.project(d.eventStream)).Methods(http.MethodGet)
	r.Handle(p+"/events/{eventId}", d.project(d.eventPage)).Methods(http.MethodGet)
	r.Handle(p+"/test-event", d.project(d.testEvent)).Methods(http.MethodPost)
	r.Handle(p+"/analytics", d.project(d.analyticsPage)).Methods(http.MethodGet)
	r.Handle(p+"/users", d.project(d.usersPage)).Methods(http.MethodGet)
	r.Handle(p+"/users/profile", d.project(d.userPage)).Methods(http.MethodGet)
	r.Handle(p+"/keys", d.project(d.keysPage)).Methods(http.MethodGet)
	r.Handle(p+"/keys", d.project(d.createKey)).Methods(http.MethodPost)
	r.Handle(p+"/keys/{keyId}/revoke", d.project(d.revokePage)).Methods(http.MethodGet)
	r.Handle(p+"/keys/{keyId}/revoke", d.project(d.revokeKey)).Methods(http.MethodPost)
	r.Handle(p+"/start", d.project(d.startPage)).Methods(http.MethodGet)
	r.Handle(p+"/start", d.project(d.startWithKey)).Methods(http.MethodPost)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

// authed requires a session, and the session's CSRF token on every
// request that changes state.
func (d *Dashboard) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := d.sessions.current(r)
		if !ok {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, ".json") && !strings.HasSuffix(r.URL.Path, "/stream") {
				http.Redirect(w, r, "/dashboard/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
				return
			}
			d.renderError(w, r, http.StatusUnauthorized, "Signed out",
				"Your session has ended. Sign in again with the admin token.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !d.sessions.checkCSRF(r, sess) {
				d.renderError(w, r, http.StatusForbidden, "Request refused",
					"This form was not sent from this dashboard session (missing or wrong CSRF token). Reload the page and try again.")
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

func sessionOf(r *http.Request) session {
	s, _ := r.Context().Value(sessionKey{}).(session)
	return s
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.sessions.current(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusFound)
		return
	}
	var notice string
	if r.URL.Query().Get("signedout") != "" {
		notice = "You are signed out."
	}
	d.render(w, r, http.StatusOK, "login", &view{Title: "Sign in", Notice: notice,
		Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !sameOrigin(r) {
		d.renderError(w, r, http.StatusForbidden, "Request refused", "The sign-in form was sent from another site.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	client := ratelimit.ClientAddress(r)
	if d.cfg.AuthFailures != nil {
		if retry, blocked := d.cfg.AuthFailures.Blocked(client); blocked {
			secs := max(1, int(math.Ceil(retry.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			d.render(w, r, http.StatusTooManyRequests, "login", &view{Title: "Sign in",
				Error: fmt.Sprintf("Too many wrong tokens from your address; try again in %d s.", secs),
				Data:  map[string]string{"Next": next}})
			return
		}
	}
	got := sha256.Sum256([]byte(token))
	if token == "" || subtle.ConstantTimeCompare(got[:], d.adminHash) != 1 {
		msg := "That is not the admin token. boost dev prints it when it first starts; otherwise it is the value of BOOST_ADMIN_TOKEN."
		if token == "" {
			msg = "Enter the admin token."
		} else if d.cfg.AuthFailures != nil {
			d.cfg.AuthFailures.Failed(client)
		}
		d.cfg.Log.WarnContext(r.Context(), "dashboard sign-in refused", "requestId", app.RequestID(r.Context()), "client", client)
		d.render(w, r, http.StatusUnauthorized, "login", &view{Title: "Sign in", Error: msg,
			Data: map[string]string{"Next": next}})
		return
	}
	d.sessions.issue(w, r)
	d.cfg.Log.InfoContext(r.Context(), "dashboard sign-in", "requestId", app.RequestID(r.Context()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps redirects after sign-in inside the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/dashboard/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/dashboard/"
	}
	return next
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	d.sessions.end(w, r, sessionOf(r))
	http.Redirect(w, r, "/dashboard/login?signedout=1", http.StatusSeeOther)
}

// opMessage turns a Manager error into what the page says.
func opMessage(err error) (int, string) {
	var e *app.Error
	if !errors.As(err, &e) {
		return http.StatusServiceUnavailable, "The service is unavailable; nothing was changed. Retry shortly."
	}
	switch e.Kind {
	case app.Invalid:
		return http.StatusBadRequest, e.Message
	case app.NotFound:
		return http.StatusNotFound, e.Message
	case app.Conflict:
		return http.StatusConflict, e.Message
	case app.Forbidden, app.Unauthorized:
		return http.StatusForbidden, e.Message
	}
	return http.StatusServiceUnavailable, e.Message + " Nothing was changed."
}
