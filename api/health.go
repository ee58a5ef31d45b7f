package api

import (
	"context"
	"net/http"
	"sync"
	"time"
)

func (s *Server) root(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{
		"name":    "boost",
		"status":  "ok",
		"version": s.cfg.Version,
		"roles":   s.cfg.Roles,
		"time":    time.Now().UTC(),
	}
	if s.cfg.Commands != nil {
		body["dashboard"] = "/dashboard/"
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz probes every dependency concurrently and names the failing ones.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	results := make(map[string]string, len(s.cfg.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ready := true
	for _, c := range s.cfg.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ready = false
				results[c.Name] = "failing: " + err.Error()
				return
			}
			results[c.Name] = "ok"
		}()
	}
	wg.Wait()
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "unavailable", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}
