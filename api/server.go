// Package api is Boost's HTTP surface: management of organizations,
// projects and API keys (admin token), health, readiness and metrics. It
// turns requests into commands for the write side and answers reads from
// the queries package.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/ratelimit"
)

// Config wires a server. App is nil for roles that only serve health and
// metrics.
type Config struct {
	Version string
	Roles   []string
	App     *app.Application
	// AdminTokenSHA256 is the hex SHA-256 of the admin token; the server
	// never holds the plaintext.
	AdminTokenSHA256 string
	Checks           []health.Check
	// Health is the pipeline stages of this process, shown (and judged)
	// by /readyz; nil: none.
	Health  *health.Board
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// AuthFailures throttles wrong admin tokens per client address
	// (shared with the dashboard's sign-in); nil: no throttle.
	AuthFailures *ratelimit.Failures
}

// Server is the HTTP handler.
type Server struct {
	cfg       Config
	app       *app.Application
	adminHash []byte
	router    *mux.Router
	// signedIn reports a dashboard session, which may read a project's
	// data like the admin token (GET only); nil: no dashboard.
	signedIn func(*http.Request) bool
}

// New builds the router.
func New(cfg Config) *Server {
	adminHash, _ := hex.DecodeString(cfg.AdminTokenSHA256)
	// Paths are matched as sent: cleaning would answer "/users/." with a
	// redirect elsewhere instead of looking up the user ".".
	s := &Server{cfg: cfg, app: cfg.App, adminHash: adminHash, router: mux.NewRouter().SkipClean(true)}
	r := s.router
	r.Use(instrument(cfg.Log, cfg.Metrics), checkParams)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " is not allowed on " + r.URL.Path})
	})

	r.HandleFunc("/", s.root).Methods(http.MethodGet)
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.HandleFunc("/openapi.json", s.openapi).Methods(http.MethodGet)

	if cfg.App == nil {
		return s
	}
	{
		// Boost's own ingestion, also where the seed product's SDKs send
		// (without /v1), Segment's and PostHog's (api/segment.go,
		// api/posthog.go): every dialect ends in the one ingestion use case.
		for _, prefix := range []string{"/v1", ""} {
			native := r.PathPrefix(prefix + "/events").Subrouter()
			native.Use(cors)
			native.HandleFunc("/track", s.ingestOne(trackCall)).Methods(http.MethodPost, http.MethodOptions)
			native.HandleFunc("/batch", s.batch(nativeItem, http.StatusAccepted)).Methods(http.MethodPost, http.MethodOptions)
		}
		ingest := r.PathPrefix("/v1").Subrouter()
		ingest.Use(cors)
		ingest.HandleFunc("/identify", s.ingestOne(identifyCall)).Methods(http.MethodPost, http.MethodOptions)
		s.routeSegment(ingest)
		s.routePostHog(r)

		reads := r.PathPrefix("/v1/projects/{projectId}").Subrouter()
		reads.Use(s.requireProjectReader)
		reads.HandleFunc("/events", s.listEvents).Methods(http.MethodGet)
		reads.HandleFunc("/events/{eventId}", s.getEvent).Methods(http.MethodGet)
		reads.HandleFunc("/users", s.listUsers).Methods(http.MethodGet)
		reads.HandleFunc("/users/{externalId}", s.getUser).Methods(http.MethodGet)
		reads.HandleFunc("/analytics/events", s.analyticsEvents).Methods(http.MethodGet)
		reads.HandleFunc("/analytics/users", s.analyticsUsers).Methods(http.MethodGet)
		reads.HandleFunc("/analytics/top-events", s.analyticsTop).Methods(http.MethodGet)
		reads.HandleFunc("/analytics/revenue", s.analyticsRevenue).Methods(http.MethodGet)
		reads.HandleFunc("/analytics/funnel", s.analyticsFunnel).Methods(http.MethodGet)
		reads.HandleFunc("/analytics/retention", s.analyticsRetention).Methods(http.MethodGet)
	}
	{
		admin := r.PathPrefix("/v1").Subrouter()
		admin.Use(s.requireAdmin)
		admin.HandleFunc("/organizations", s.createOrganization).Methods(http.MethodPost)
		admin.HandleFunc("/organizations", s.listOrganizations).Methods(http.MethodGet)
		admin.HandleFunc("/organizations/{orgId}", s.getOrganization).Methods(http.MethodGet)
		admin.HandleFunc("/organizations/{orgId}/projects", s.createProject).Methods(http.MethodPost)
		admin.HandleFunc("/organizations/{orgId}/projects", s.listProjects).Methods(http.MethodGet)
		admin.HandleFunc("/projects/{projectId}", s.getProject).Methods(http.MethodGet)
		admin.HandleFunc("/projects/{projectId}/api-keys", s.createKey).Methods(http.MethodPost)
		admin.HandleFunc("/projects/{projectId}/api-keys", s.listKeys).Methods(http.MethodGet)
		admin.HandleFunc("/projects/{projectId}/api-keys/{keyId}", s.getKey).Methods(http.MethodGet)
		admin.HandleFunc("/projects/{projectId}/api-keys/{keyId}", s.revokeKey).Methods(http.MethodDelete)
		if cfg.App.Queries.Quarantine != nil {
			admin.HandleFunc("/quarantine", s.listQuarantine).Methods(http.MethodGet)
			admin.HandleFunc("/quarantine/{id}", s.getQuarantined).Methods(http.MethodGet)
			admin.HandleFunc("/quarantine/{id}/reprocess", s.reprocessQuarantined).Methods(http.MethodPost)
		}
	}
	return s
}

// Mount serves h under prefix (the dashboard), behind the same request
// ids, logging and metrics as the API.
func (s *Server) Mount(prefix string, h http.Handler) {
	s.router.PathPrefix(prefix).Handler(h)
}

// AcceptSessions lets a signed-in dashboard session read project data
// (the GET endpoints under /v1/projects/{id}/) as the admin token would, so
// the dashboard's charts are drawn from the query API itself. Writes still
// need the admin token. Call it before serving.
func (s *Server) AcceptSessions(signedIn func(*http.Request) bool) { s.signedIn = signedIn }

// isAdmin reports whether the request carries the admin token.
func (s *Server) isAdmin(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return len(s.adminHash) == sha256.Size && subtle.ConstantTimeCompare(got[:], s.adminHash) == 1
}

// requireProjectReader admits the admin token, or a secret key of the
// project in the path. A publishable key never reads (403); another
// project's secret key sees nothing (404, as if the project did not exist).
func (s *Server) requireProjectReader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		projectID, e := pathID(r, "projectId")
		if e != nil {
			writeError(w, e)
			return
		}
		plaintext := headerKey(r)
		looksLikeKey := strings.HasPrefix(plaintext, "pk_live_") || strings.HasPrefix(plaintext, "sk_live_")
		if !looksLikeKey && plaintext != "" {
			if e := s.throttled(r); e != nil {
				writeError(w, e)
				return
			}
		}
		if s.isAdmin(r) || (r.Method == http.MethodGet && s.signedIn != nil && s.signedIn(r)) {
			s.inProject(w, r, projectID, next)
			return
		}
		if !looksLikeKey {
			if plaintext != "" {
				s.authFailed(r) // neither a key nor the admin token: a guess at the token
			}
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "send the admin token or a secret key of this project (x-api-key or Authorization: Bearer)"})
			return
		}
		k, e := s.authenticate(r.Context(), plaintext)
		if e != nil {
			writeError(w, e)
			return
		}
		if k.Type != domain.KeySecret {
			writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden",
				Message: "publishable keys cannot read data; use a secret key on your server"})
			return
		}
		if k.ProjectID != projectID {
			writeError(w, errNotFound("project", projectID))
			return
		}
		s.inProject(w, r, projectID, next)
	})
}

type scopedQueriesKey struct{}

// inProject serves r with queries confined to projectID (row-level
// security on PostgreSQL), reachable through s.queries(r).
func (s *Server) inProject(w http.ResponseWriter, r *http.Request, projectID string, next http.Handler) {
	served := false
	err := s.app.Queries.Read.InProject(r.Context(), projectID, func(ctx context.Context, q *queries.Queries) error {
		served = true
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, scopedQueriesKey{}, q)))
		return nil
	})
	if err != nil && !served {
		s.cfg.Log.ErrorContext(r.Context(), "opening project scope failed", "requestId", app.RequestID(r.Context()), "err", err)
		writeError(w, errUnavailable("the read model database"))
	}
}

// queries returns the project-scoped queries of a read request.
func (s *Server) queries(r *http.Request) *queries.Queries {
	if q, ok := r.Context().Value(scopedQueriesKey{}).(*queries.Queries); ok {
		return q
	}
	return s.app.Queries.Read
}

// notFound answers 405 with Allow when the path exists under another
// method (gorilla/mux loses that distinction across subrouters), else 404.
func (s *Server) notFound(w http.ResponseWriter, req *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == req.Method {
			continue
		}
		probe := req.Clone(req.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: req.Method + " is not allowed on " + req.URL.Path + "; use " + strings.Join(allowed, " or ")})
		return
	}
	writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found",
		Message: "no route for " + req.Method + " " + req.URL.Path})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// requireAdmin accepts the admin token as "Authorization: Bearer <token>".
// Tokens are compared as SHA-256 digests in constant time; an address that
// sends too many wrong ones is refused for a while (429).
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "missing admin token: send Authorization: Bearer <BOOST_ADMIN_TOKEN>"})
			return
		}
		if e := s.throttled(r); e != nil {
			writeError(w, e)
			return
		}
		if !s.isAdmin(r) {
			s.authFailed(r)
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "invalid admin token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// throttled answers 429 to an address over its allowance of wrong tokens.
func (s *Server) throttled(r *http.Request) *Error {
	if s.cfg.AuthFailures == nil {
		return nil
	}
	retry, blocked := s.cfg.AuthFailures.Blocked(ratelimit.ClientAddress(r))
	if !blocked {
		return nil
	}
	secs := max(1, int(math.Ceil(retry.Seconds())))
	return &Error{Status: http.StatusTooManyRequests, Code: "too_many_failures", RetryAfter: secs,
		Message: fmt.Sprintf("too many wrong tokens from this address; retry in %d s", secs)}
}

func (s *Server) authFailed(r *http.Request) {
	if s.cfg.AuthFailures != nil {
		client := ratelimit.ClientAddress(r)
		s.cfg.AuthFailures.Failed(client)
		s.cfg.Log.WarnContext(r.Context(), "wrong admin token", "requestId", app.RequestID(r.Context()), "client", client)
	}
}
