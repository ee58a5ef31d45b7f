package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gamify/boost/health"
)

func (s *Server) root(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{
		"name":    "boost",
		"status":  "ok",
		"version": s.cfg.Version,
		"roles":   s.cfg.Roles,
		"time":    time.Now().UTC(),
	}
	if s.cfg.App != nil {
		body["dashboard"] = "/dashboard/"
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz probes every dependency concurrently and names the failing ones,
// and reports the pipeline stages this process runs: a stage holding
// waiting work without progress past the stall threshold makes the process
// unready and is named, with what it last failed on.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	results := make(map[string]string, len(s.cfg.Checks))
	ready := true
	for i, err := range health.ProbeAll(ctx, s.cfg.Checks) {
		results[s.cfg.Checks[i].Name] = "ok"
		if err != nil {
			ready = false
			results[s.cfg.Checks[i].Name] = "failing: " + err.Error()
		}
	}
	body := map[string]any{"checks": results}
	if s.cfg.Health != nil {
		stages := s.cfg.Health.Snapshot()
		var stalled []string
		for _, st := range stages {
			if st.Stalled {
				stalled = append(stalled, st.Name)
			}
		}
		body["stages"] = stages
		if len(stalled) > 0 {
			ready = false
			body["stalled"] = stalled
		}
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "unavailable", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	}
	body["status"] = status
	writeJSON(w, code, body)
}
