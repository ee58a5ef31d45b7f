package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/metrics"
)

// TestOpenAPIDocumentsEveryRoute: the document and the router list the
// same operations (CORS preflights aside, which the document describes
// once), every operation has an example that compat's OpenAPI test sends
// to a running Boost, and the document's limits are the contract's.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s := New(Config{App: &app.Application{Queries: app.Queries{Quarantine: noQuarantine{}}}, Metrics: metrics.New()})
	served := map[string]bool{}
	err := s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a prefix (the dashboard's mount, subrouters)
		}
		for _, m := range methods {
			if m != http.MethodOptions {
				served[m+" "+tpl] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		if ref, ok := item["$ref"]; ok {
			var r string
			_ = json.Unmarshal(ref, &r)
			target := strings.ReplaceAll(strings.TrimPrefix(r, "#/paths/"), "~1", "/")
			if item = doc.Paths[target]; item == nil {
				t.Errorf("%s refers to %s, which the document lacks", path, r)
				continue
			}
		}
		for method, raw := range item {
			m := strings.ToUpper(method)
			switch m {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
			default:
				continue
			}
			documented[m+" "+path] = true
			if !hasExample(raw) {
				t.Errorf("%s %s has no example (x-examples, or examples of its request body)", m, path)
			}
		}
	}
	for op := range served {
		if !documented[op] {
			t.Errorf("served but not in api/openapi.json: %s", op)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("in api/openapi.json but not served: %s", op)
		}
	}
	limits(t, "", OpenAPI())
}

// noQuarantine stands for a quarantine, so that its routes are served.
type noQuarantine struct{ app.QuarantineReader }

func hasExample(op json.RawMessage) bool {
	var o struct {
		XExamples   []json.RawMessage `json:"x-examples"`
		RequestBody struct {
			Content map[string]struct {
				Examples map[string]json.RawMessage `json:"examples"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	_ = json.Unmarshal(op, &o)
	if len(o.XExamples) > 0 {
		return true
	}
	for _, c := range o.RequestBody.Content {
		if len(c.Examples) > 0 {
			return true
		}
	}
	return false
}

// limits requires every maxItems of the document to be the contract's
// batch limit and every maxLength its id and name limit.
func limits(t *testing.T, at string, raw json.RawMessage) {
	t.Helper()
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) == nil {
			for i, v := range a {
				limits(t, fmt.Sprintf("%s[%d]", at, i), v)
			}
		}
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var n int
		switch {
		case k == "maxItems" && json.Unmarshal(m[k], &n) == nil && n != domain.MaxBatchItems:
			t.Errorf("%s.maxItems is %d; the contract's batch limit is %d", at, n, domain.MaxBatchItems)
		case k == "maxLength" && json.Unmarshal(m[k], &n) == nil && !slices.Contains([]int{domain.MaxIDLen, domain.MaxNameLen}, n):
			t.Errorf("%s.maxLength is %d; the contract's id and name limits are %d and %d", at, n, domain.MaxIDLen, domain.MaxNameLen)
		case strings.HasPrefix(k, "x-") || k == "example" || k == "examples":
		default:
			limits(t, at+"."+k, m[k])
		}
	}
}
