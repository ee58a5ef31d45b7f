package services_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

var tenancyTables = []string{"organizations", "projects", "api_keys", "projection_checkpoints"}

// TestKeyPlaintextIsStoredNowhere creates keys, then searches every
// JetStream message, every Kafka record, every read-model row and (embedded)
// every file of the data directory for their plaintext. The key hash is the
// positive control: it must be found, or the search proves nothing.
func TestKeyPlaintextIsStoredNowhere(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		ctx := context.Background()
		nd := startNode(t, env, services.AllRoles...)
		org := str(nd.admin("POST", "/v1/organizations", `{"name":"Acme"}`, http.StatusCreated), "id")
		proj := str(nd.admin("POST", "/v1/organizations/"+org+"/projects", `{"name":"Shop"}`, http.StatusCreated), "id")
		var plains []string
		for _, typ := range []string{"publishable", "secret"} {
			k := nd.admin("POST", "/v1/projects/"+proj+"/api-keys", `{"name":"k","type":"`+typ+`"}`, http.StatusCreated)
			plains = append(plains, str(k, "key"))
			nd.admin("DELETE", "/v1/projects/"+proj+"/api-keys/"+str(k, "id"), "", http.StatusOK)
		}
		nd.stop() // flush everything to disk

		var corpus [][]byte
		corpus = append(corpus, streamMessages(t, env)...)
		corpus = append(corpus, kafkaRecords(t, env)...)
		corpus = append(corpus, tableRows(t, env)...)
		if env.Mode == testenv.Embedded {
			corpus = append(corpus, dataDirFiles(t, env.DataDir)...)
		}
		for _, plain := range plains {
			secretPart := []byte(plain[len("pk_live_"):])
			hash := []byte(domain.HashKey(plain))
			foundHash := false
			for _, blob := range corpus {
				if bytes.Contains(blob, secretPart) {
					t.Fatalf("plaintext of %s… found in stored data", plain[:12])
				}
				foundHash = foundHash || bytes.Contains(blob, hash)
			}
			if !foundHash {
				t.Fatalf("hash of %s… not found either: the search covers nothing", plain[:12])
			}
		}
		_ = ctx
	})
}

func streamMessages(t *testing.T, env *testenv.Env) [][]byte {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(env.ConnectNATS())
	if err != nil {
		t.Fatal(err)
	}
	names := bus.Names{Prefix: env.Config.NATSPrefix}
	var out [][]byte
	// Commands leave their stream once handled and trimmed; what is left of
	// them on disk is covered by the data-directory scan.
	for _, stream := range []string{names.CommandStream(), names.EventStream(), names.TrackedStream()} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info(ctx)
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			out = append(out, m.Data, []byte(fmt.Sprint(m.Header)))
		}
		if stream == names.EventStream() && info.State.Msgs == 0 {
			t.Fatalf("stream %s is empty", stream)
		}
	}
	return out
}

func kafkaRecords(t *testing.T, env *testenv.Env) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	total := endOffsets(t, env, env.Config.Topics.Tenancy)
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Config.KafkaBrokers...),
		kgo.ConsumeTopics(env.Config.Topics.Tenancy), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out [][]byte
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d kafka records", len(out), total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, append(append(append([]byte{}, r.Key...), r.Value...), []byte(fmt.Sprint(r.Headers))...))
		})
	}
	return out
}

func endOffsets(t *testing.T, env *testenv.Env, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Config.KafkaBrokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

func tableRows(t *testing.T, env *testenv.Env) [][]byte {
	t.Helper()
	ctx := context.Background()
	db := env.OpenDB(ctx)
	var out [][]byte
	for _, tbl := range append(tenancyTables, "bun_migrations") {
		var rows []map[string]any
		if err := db.NewSelect().Table(tbl).Scan(ctx, &rows); err != nil {
			t.Fatalf("dumping %s: %v", tbl, err)
		}
		out = append(out, []byte(fmt.Sprint(rows)))
	}
	return out
}

func dataDirFiles(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flakyProjection fails the whole transaction of its nth batch after the
// inner projection applied it, as a crash mid-batch would.
type flakyProjection struct {
	projections.Projection
	failOn  int32
	batches atomic.Int32
}

func (f *flakyProjection) Apply(ctx context.Context, tx bun.Tx, db *store.DB, events []domain.Event) error {
	if err := f.Projection.Apply(ctx, tx, db, events); err != nil {
		return err
	}
	time.Sleep(30 * time.Millisecond) // slow enough to be stopped half way
	if f.batches.Add(1) == f.failOn {
		return errors.New("injected failure after applying the batch")
	}
	return nil
}

// TestProjectorStoppedMidwayResumesExactly stops a projection half way,
// injects a failed transaction, re-sends records the way a bridge restart
// would, and checks every read model row matches the log exactly once.
func TestProjectorStoppedMidwayResumesExactly(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		ctx := context.Background()
		writer := startNode(t, env, services.RoleAPI, services.RoleWorker, services.RoleBridge)
		cb := writer.n.CommandBus()
		nc := env.ConnectNATS()
		es, err := bus.NewEventStore(ctx, nc, bus.Names{Prefix: env.Config.NATSPrefix})
		if err != nil {
			t.Fatal(err)
		}
		const orgs, projects = 150, 50
		orgIDs := make([]string, orgs)
		for i := range orgIDs {
			orgIDs[i] = domain.NewID()
			if err := cb.Send(ctx, &commands.CreateOrganization{Header: commands.NewHeader("t"), OrganizationID: orgIDs[i], Name: fmt.Sprint("org ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		waitUntil(t, 30*time.Second, "first organization appended", func() bool {
			h, _, _ := es.Load(ctx, domain.AggregateOrganization, orgIDs[0])
			return len(h) == 1
		})
		for i := range projects {
			if err := cb.Send(ctx, &commands.CreateProject{Header: commands.NewHeader("t"), ProjectID: domain.NewID(),
				OrganizationID: orgIDs[0], Name: fmt.Sprint("project ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		topic := env.Config.Topics.Tenancy
		waitUntil(t, 60*time.Second, "all events bridged", func() bool { return endOffsets(t, env, topic) == orgs+projects })

		db := env.OpenDB(ctx)
		m := metrics.New()
		group := env.Config.NATSPrefix + ".projection.tenancy"
		checkpointed := func() int64 {
			var sum int64
			if err := db.NewSelect().Table("projection_checkpoints").ColumnExpr("COALESCE(SUM(next_offset), 0)").Scan(ctx, &sum); err != nil {
				t.Fatal(err)
			}
			return sum
		}
		rows := func() int64 {
			var n int64
			for _, tbl := range []string{"organizations", "projects"} {
				c, err := db.NewSelect().Table(tbl).Count(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n += int64(c)
			}
			return n
		}
		run := func(p projections.Projection, maxBatch int) (stop func()) {
			// One static member id for every run: each takes over from the
			// one before it, as a restarted projector does.
			r, err := projections.NewRunner(projections.RunnerConfig{DB: db, Brokers: env.Config.KafkaBrokers, Group: group,
				Projection: p, Log: testenv.Logger(t), Metrics: m, MaxBatch: maxBatch, InstanceID: "projector-under-test"})
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			return func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("runner: %v", err)
				}
			}
		}

		flaky := &flakyProjection{Projection: projections.NewTenancy(topic, nil), failOn: 3}
		stop := run(flaky, 10)
		waitUntil(t, 30*time.Second, "projection half way", func() bool { return checkpointed() >= 60 })
		stop()
		if flaky.batches.Load() < 3 {
			t.Fatalf("the injected failure never ran (%d batches)", flaky.batches.Load())
		}
		mid := checkpointed()
		if mid >= orgs+projects {
			t.Fatalf("projection finished before it was stopped (%d)", mid)
		}
		if got := rows(); got != mid {
			t.Fatalf("stopped at %d checkpointed records but %d rows: a gap or a duplicate", mid, got)
		}

		// A bridge that crashed before acking re-sends records: produce the
		// first 20 again.
		dups := reproduce(t, env, topic, 20)
		stop = run(projections.NewTenancy(topic, nil), 1000)
		waitUntil(t, 30*time.Second, "projection caught up", func() bool { return checkpointed() == orgs+projects+dups })
		stop()
		if got := rows(); got != orgs+projects {
			t.Fatalf("%d rows after resuming, want %d", got, orgs+projects)
		}
		var cps []struct {
			Partition  int32 `bun:"partition"`
			NextOffset int64 `bun:"next_offset"`
		}
		if err := db.NewSelect().Table("projection_checkpoints").Column("partition", "next_offset").Scan(ctx, &cps); err != nil {
			t.Fatal(err)
		}
		cl, _ := kgo.NewClient(kgo.SeedBrokers(env.Config.KafkaBrokers...))
		defer cl.Close()
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range cps {
			if end, _ := ends.Lookup(topic, cp.Partition); end.Offset != cp.NextOffset {
				t.Errorf("partition %d checkpoint %d, end of log %d", cp.Partition, cp.NextOffset, end.Offset)
			}
		}
	})
}

// reproduce copies the first n records of topic to its end, as a
// re-sending bridge would, and returns how many it wrote.
func reproduce(t *testing.T, env *testenv.Env, topic string, n int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Config.KafkaBrokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < n {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if len(recs) < n {
				recs = append(recs, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers})
			}
		})
		if ctx.Err() != nil {
			t.Fatal("reading records to re-send timed out")
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return int64(len(recs))
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRolesAsSeparateNodes runs api, worker, bridge and projector each
// with its own connections, as separate processes would.
func TestRolesAsSeparateNodes(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		apiNode := startApart(t, env, 1)[0]
		org := str(apiNode.admin("POST", "/v1/organizations", `{"name":"Acme"}`, http.StatusCreated), "id")
		proj := str(apiNode.admin("POST", "/v1/organizations/"+org+"/projects", `{"name":"Shop"}`, http.StatusCreated), "id")
		key := str(apiNode.admin("POST", "/v1/projects/"+proj+"/api-keys", `{"name":"k","type":"secret"}`, http.StatusCreated), "id")
		apiNode.admin("DELETE", "/v1/projects/"+proj+"/api-keys/"+key, "", http.StatusOK)
		if ks := data(t, apiNode.admin("GET", "/v1/projects/"+proj+"/api-keys", "", http.StatusOK)); len(ks) != 1 || str(ks[0], "status") != "revoked" {
			t.Fatalf("keys: %v", ks)
		}
	})
}

func TestReadinessNamesTheFailingDependency(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	env.Migrate(t.Context())
	nd := startNode(t, env, services.AllRoles...)
	nd.admin("POST", "/v1/organizations", `{"name":"Acme"}`, http.StatusCreated)
	r := nd.do("GET", "/readyz", "", "")
	if r.Status != http.StatusOK {
		t.Fatalf("readyz %d: %s", r.Status, r.Body)
	}
	checks := r.json(t)["checks"].(map[string]any)
	for _, dep := range []string{"jetstream", "kafka", "database"} {
		if checks[dep] != "ok" {
			t.Fatalf("check %s = %v", dep, checks[dep])
		}
	}
	nd.n.DB.Close()
	env.Kafka.Close()
	r = nd.do("GET", "/readyz", "", "")
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz %d (Retry-After %q): %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	checks = r.json(t)["checks"].(map[string]any)
	for dep, want := range map[string]string{"database": "failing", "kafka": "failing", "jetstream": "ok"} {
		if got, _ := checks[dep].(string); !strings.HasPrefix(got, want) {
			t.Errorf("check %s = %q, want %s…", dep, got, want)
		}
	}
	if h := nd.do("GET", "/healthz", "", ""); h.Status != http.StatusOK {
		t.Errorf("liveness %d while dependencies are down", h.Status)
	}
	metricsBody := string(nd.do("GET", "/metrics", "", "").Body)
	for _, name := range []string{"boost_http_requests_total", "boost_http_request_duration_seconds", "boost_commands_handled_total",
		"boost_bridge_lag_events", "boost_projection_lag_records"} {
		if !strings.Contains(metricsBody, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestRolesRefuseAnUnmigratedDatabase(t *testing.T) {
	cfg, _ := config.FromEnv(func(string) string { return "" })
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "fresh.db")
	cfg.KafkaBrokers = []string{"127.0.0.1:1"}
	err := services.RunRoles(t.Context(), cfg, []string{services.RoleProjector}, "test", testenv.Logger(t), nil)
	if !errors.Is(err, store.ErrNotMigrated) || !strings.Contains(err.Error(), "boost migrate") {
		t.Fatalf("err = %v, want ErrNotMigrated telling to run boost migrate", err)
	}
	cfg.AdminTokenSHA256 = ""
	err = services.RunRoles(t.Context(), cfg, []string{services.RoleAPI}, "test", testenv.Logger(t), nil)
	if err == nil || !strings.Contains(err.Error(), "BOOST_ADMIN_TOKEN") || !strings.Contains(err.Error(), "NATS_URL") {
		t.Fatalf("err = %v, want it to name the missing variables", err)
	}
}

// TestDevRestartKeepsEverything runs `boost dev` twice on one data
// directory: the seeded and created data survive, and the admin token
// printed on first start still works.
func TestDevRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := config.FromEnv(func(string) string { return "" })
	cfg.DataDir, cfg.Port, cfg.DevNATSAddr, cfg.DevKafkaPort = dir, 0, "127.0.0.1:0", 0

	start := func() (base string, banner *bytes.Buffer, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		banner = &bytes.Buffer{}
		started := make(chan string, 1)
		done := make(chan error, 1)
		var mu sync.Mutex
		go func() {
			done <- services.Dev(ctx, services.DevOptions{Config: cfg, Version: "test", Log: testenv.Logger(t),
				Out: lockedWriter{&mu, banner}, Started: func(n *services.Node) { started <- n.Addr() }})
		}()
		select {
		case addr := <-started:
			base = "http://" + strings.Replace(addr, "[::]", "127.0.0.1", 1)
		case err := <-done:
			t.Fatalf("dev: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("dev did not start")
		}
		return base, banner, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("dev stopped with %v", err)
			}
		}
	}

	base, banner, stop := start()
	text := banner.String()
	token := regexp.MustCompile(`Admin token\s+(boost_admin_[0-9a-f]+)`).FindStringSubmatch(text)
	pk := regexp.MustCompile(`Publishable\s+(pk_live_[0-9a-f]{64})`).FindStringSubmatch(text)
	sk := regexp.MustCompile(`Secret\s+(sk_live_[0-9a-f]{64})`).FindStringSubmatch(text)
	proj := regexp.MustCompile(`Project\s+([0-9a-f-]{36})`).FindStringSubmatch(text)
	if token == nil || pk == nil || sk == nil || proj == nil || !strings.Contains(text, "curl") {
		t.Fatalf("banner lacks token, keys, project or curl:\n%s", text)
	}
	get := func(base, path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get(base, "/v1/projects/"+proj[1]+"/api-keys"); code != 200 || strings.Count(body, `"status":"active"`) != 2 {
		t.Fatalf("seeded keys: %d %s", code, body)
	}
	stop()

	base, banner, stop = start()
	defer stop()
	if strings.Contains(banner.String(), "pk_live_") || strings.Contains(banner.String(), "boost_admin_") {
		t.Fatalf("second start printed secrets again:\n%s", banner.String())
	}
	code, body := get(base, "/v1/projects/"+proj[1]+"/api-keys")
	if code != 200 || strings.Count(body, `"status":"active"`) != 2 {
		t.Fatalf("after restart: %d %s", code, body)
	}
	for _, f := range dataDirFiles(t, dir) {
		if bytes.Contains(f, []byte(pk[1][8:])) || bytes.Contains(f, []byte(sk[1][8:])) || bytes.Contains(f, []byte(token[1])) {
			t.Fatal("a secret printed at start was found in the data directory")
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestConsumersOutliveWorkers stops a worker and checks its durable
// consumers are still there: another worker keeps being fed, and the next
// start resumes where the last one stopped instead of re-reading streams.
func TestConsumersOutliveWorkers(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		ctx := context.Background()
		w := startNode(t, env, services.RoleWorker)
		w.stop()
		js, err := jetstream.New(env.ConnectNATS())
		if err != nil {
			t.Fatal(err)
		}
		names := bus.Names{Prefix: env.Config.NATSPrefix}
		for _, c := range commands.Names() {
			if _, err := js.Consumer(ctx, names.CommandStream(), bus.DurableName(names.WorkerQueue(), names.CommandSubject(c))); err != nil {
				t.Errorf("consumer for %s gone after the worker stopped: %v", c, err)
			}
		}
		if _, err := js.Consumer(ctx, names.TrackedStream(), bus.DurableName(names.ProcessorQueue(), names.TrackedSubjects())); err != nil {
			t.Errorf("processor consumer gone after the worker stopped: %v", err)
		}
	})
}

// TestRolesServeWithoutAnyoneWaiting: `boost worker` (RunRoles with no
// started callback, as the command line runs it) comes up and serves its
// health until stopped — nothing in start-up relies on a caller having
// asked whether it is ready.
func TestRolesServeWithoutAnyoneWaiting(t *testing.T) {
	env := testenv.Start(t, testenv.Embedded)
	cfg := env.Config
	cfg.NATSURL = env.NATSURL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- services.RunRoles(ctx, cfg, []string{services.RoleWorker}, "test", testenv.Logger(t), nil)
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", cfg.Port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the worker stopped before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never served /healthz")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopping: %v", err)
	}
}
