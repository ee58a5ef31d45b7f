package api

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/metrics"
)

func validHeaderID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// instrument gives every request ids, a log line, metrics, and turns a
// panic into a 500 JSON error instead of a dropped connection.
func instrument(log *slog.Logger, m *metrics.Metrics) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			reqID := r.Header.Get("X-Request-Id")
			if !validHeaderID(reqID) {
				reqID = domain.NewID()
			}
			corrID := r.Header.Get("X-Correlation-Id")
			if !validHeaderID(corrID) {
				corrID = reqID
			}
			w.Header().Set("X-Request-Id", reqID)
			ctx := app.WithRequest(r.Context(), reqID, corrID)
			rec := &statusRecorder{ResponseWriter: w}

			route := "unmatched"
			if cr := mux.CurrentRoute(r); cr != nil {
				if tpl, err := cr.GetPathTemplate(); err == nil {
					route = tpl
				}
			}
			defer func() {
				if p := recover(); p != nil {
					log.ErrorContext(ctx, "panic serving request", "requestId", reqID, "route", route,
						"panic", p, "stack", string(debug.Stack()))
					if rec.status == 0 {
						writeError(rec, &Error{Status: http.StatusInternalServerError, Code: "internal",
							Message: "internal error; request id " + reqID})
					}
				}
				status := rec.status
				if status == 0 {
					status = http.StatusOK
				}
				elapsed := time.Since(start)
				m.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
				m.HTTPDuration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
				if route != "/metrics" && route != "/healthz" && route != "/readyz" {
					log.Log(ctx, accessLevel(status, elapsed), "http request", "requestId", reqID, "correlationId", corrID,
						"method", r.Method, "route", route, "status", status, "durationMs",
						float64(elapsed.Microseconds())/1000)
				}
			}()
			next.ServeHTTP(rec, r.WithContext(ctx))
		})
	}
}

// accessLevel is how loudly a request is logged. An ingestion API answers
// thousands of requests a second: a line for each success is noise at
// info (and was 7 % of the HTTP path's CPU), so successes are logged at
// debug; what a client got wrong at info; what the server got wrong, or a
// request slower than slowRequest, at warn or error.
func accessLevel(status int, elapsed time.Duration) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case elapsed >= slowRequest:
		return slog.LevelWarn
	case status >= 400:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// slowRequest is the answer time from which a request is logged at warn.
const slowRequest = time.Second

// checkParams refuses a request whose query parameters or path variables
// hold text no database can be asked about (invalid UTF-8 or NUL) with a
// 400 naming the parameter, for every route at once: a query must never
// turn bad input into a database error.
func checkParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, values := range r.URL.Query() {
			for _, v := range append([]string{name}, values...) {
				if p := domain.TextProblem(v); p != "" {
					writeError(w, errBadRequest(name, "query parameter %s %s", safeName(name), p))
					return
				}
			}
		}
		for name, v := range mux.Vars(r) {
			if p := domain.TextProblem(v); p != "" {
				writeError(w, errBadRequest(name, "%s %s", name, p))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// safeName shows a parameter name in a message, which must itself be
// valid text.
func safeName(s string) string {
	if domain.TextProblem(s) != "" {
		return strconv.Quote(s)
	}
	return s
}
