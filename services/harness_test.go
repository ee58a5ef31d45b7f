package services_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

// node is one running Boost node in a test.
type node struct {
	t      *testing.T
	env    *testenv.Env
	n      *services.Node
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startApart runs the worker, bridge and projector each as a node of its
// own, and apis api nodes, which it returns.
func startApart(t *testing.T, env *testenv.Env, apis int) []*node {
	t.Helper()
	for _, r := range []string{services.RoleWorker, services.RoleBridge, services.RoleProjector} {
		startNode(t, env, r)
	}
	out := make([]*node, apis)
	for i := range out {
		out[i] = startNode(t, env, services.RoleAPI)
	}
	return out
}

// startNode runs roles over env, each node with its own connections as a
// separate process would have.
func startNode(t *testing.T, env *testenv.Env, roles ...string) *node {
	t.Helper()
	return startNodeWith(t, env, nil, roles...)
}

// startNodeWith is startNode with edit applied to the node before it runs.
func startNodeWith(t *testing.T, env *testenv.Env, edit func(*services.Node), roles ...string) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	need := services.NeedsOf(roles)
	n := &services.Node{Config: env.Config, Roles: roles, Version: "test", Log: testenv.Logger(t), Metrics: metrics.New()}
	if need.DB {
		db, err := store.Open(ctx, env.DBURL)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.CheckMigrated(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		n.DB = db
	}
	if need.NATS {
		n.NATS = env.ConnectNATS()
	}
	for _, r := range roles {
		if r == services.RoleAPI || r == services.RoleProjector {
			n.Redis = env.Redis()
			break
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.Listener = ln
	if edit != nil {
		edit(n)
	}
	nd := &node{t: t, env: env, n: n, cancel: cancel, done: make(chan error, 1)}
	go func() { nd.done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-nd.done:
		t.Fatalf("node %v did not start: %v", roles, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("node %v did not start within 30s", roles)
	}
	nd.base = "http://" + n.Addr()
	t.Cleanup(nd.stop)
	return nd
}

func (nd *node) stop() {
	nd.cancel()
	select {
	case err := <-nd.done:
		if err != nil {
			nd.t.Errorf("node stopped with error: %v", err)
		}
		nd.done <- nil
	case <-time.After(90 * time.Second):
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		nd.t.Errorf("node did not stop within 90s; goroutines:\n%s", stacks.String())
	}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (nd *node) do(method, path, body, token string) response {
	nd.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, nd.base+path, rd)
	if err != nil {
		nd.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		nd.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// admin sends an admin request and requires status want.
func (nd *node) admin(method, path, body string, want int) map[string]any {
	nd.t.Helper()
	r := nd.do(method, path, body, nd.env.AdminToken)
	if r.Status != want {
		nd.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if len(bytes.TrimSpace(r.Body)) == 0 {
		return nil
	}
	return r.json(nd.t)
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func data(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["data"].([]any)
	if !ok {
		t.Fatalf("no data array in %v", m)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// eachMode runs fn once per available infrastructure mode.
func eachMode(t *testing.T, fn func(t *testing.T, env *testenv.Env)) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			env := testenv.Start(t, mode)
			env.Migrate(context.Background())
			fn(t, env)
		})
	}
}
