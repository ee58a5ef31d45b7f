package chaos

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/gamify/boost/domain"
)

// plan is how hard and how long a pass pushes.
type plan struct {
	Load              time.Duration // steady load per scenario
	Kills             int           // SIGKILLs per scenario
	Rate              float64       // events per second
	Workers           int           // concurrent senders
	RetryFor          time.Duration // retries after the load ends
	DrainTimeout      time.Duration // bound on waiting for the pipeline to drain
	RevocationTimeout time.Duration // bound on waiting for a revoked key to be refused
	SampleEvery       time.Duration
}

// shortPlan is the CI pass: every fault, twice, in a few minutes.
var shortPlan = plan{Load: 12 * time.Second, Kills: 2, Rate: 300, Workers: 4, RetryFor: 30 * time.Second,
	DrainTimeout: 30 * time.Second, RevocationTimeout: 75 * time.Second, SampleEvery: 250 * time.Millisecond}

// soakPlan is the long run: more kills, longer load.
var soakPlan = plan{Load: 2 * time.Minute, Kills: 8, Rate: 400, Workers: 6, RetryFor: time.Minute,
	DrainTimeout: 3 * time.Minute, RevocationTimeout: 75 * time.Second, SampleEvery: 250 * time.Millisecond}

// faultRecord is one kill as it happened.
type faultRecord struct {
	Target string
	At     time.Duration // since the load began
	Down   time.Duration
	Ready  time.Duration // from the restart until the process was ready; -1 if it never was
	Err    string
}

// loadCounts is a plain copy of the load's statistics.
type loadCounts struct {
	Requests, Attempts, Status5xx, Status429, Status4xx, NetErrors, GaveUp int64
}

// result is everything one scenario measured.
type result struct {
	Scenario   scenario
	RunSeed    uint64 // the run's --seed; the scenario derives its own from it
	Elapsed    time.Duration
	SetupErr   error
	Kills      []faultRecord
	Load       loadCounts
	Verdict    verdict
	Drained    bool
	Drain      time.Duration
	Stall      time.Duration
	Revocation *revocationResult
	Crashes    []string
	Dir        string
}

// Failures lists everything that makes the scenario fail.
func (r *result) Failures() []string {
	var out []string
	if r.SetupErr != nil {
		return []string{"SETUP: " + r.SetupErr.Error()}
	}
	if !r.Drained {
		out = append(out, fmt.Sprintf("NOT DRAINED: accepted events still missing or pending after %s "+
			"(the counts below are as of then: lost may be late, stuck may still move)", fmtDuration(r.Drain)))
	}
	out = append(out, r.Verdict.Failures...)
	for _, k := range r.Kills {
		if k.Err != "" {
			out = append(out, "FAULT: "+k.Target+": "+k.Err)
		}
	}
	if r.Revocation != nil {
		out = append(out, r.Revocation.failures()...)
	}
	return out
}

// Passed reports whether the scenario found nothing wrong.
func (r *result) Passed() bool { return len(r.Failures()) == 0 }

// scenarioRun is the shared state of one scenario while it runs.
type scenarioRun struct {
	sc     scenario
	plan   plan
	seed   uint64
	env    *suiteEnv
	log    *slog.Logger
	stack  *stack
	tenant *tenant
	reader *reader
	ledger *ledger
}

// runScenario starts the scenario's stack, loads it while injecting its
// faults, drains, verifies and stops it.
func runScenario(ctx context.Context, env *suiteEnv, sc scenario) *result {
	begin := time.Now()
	seed := scenarioSeed(env.seed, sc.Name)
	res := &result{Scenario: sc, RunSeed: env.seed, Dir: filepath.Join(env.dir, sc.Name)}
	defer func() { res.Elapsed = time.Since(begin) }()
	log := env.log.With("scenario", sc.Name)
	run := &scenarioRun{sc: sc, plan: env.plan, seed: seed, env: env, log: log, ledger: newLedger()}
	if err := run.setUp(ctx, res.Dir); err != nil {
		res.SetupErr = err
		if run.stack != nil {
			run.stack.close(context.WithoutCancel(ctx), env.keep)
		}
		return res
	}
	defer run.stack.close(context.WithoutCancel(ctx), env.keep)
	defer run.reader.close()
	run.measure(ctx, res)
	res.Crashes = run.stack.crashes()
	return res
}

func (r *scenarioRun) setUp(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	r.log.Info("starting the stack")
	st, err := startStack(ctx, stackConfig{Topology: r.sc.Topology, APIs: r.sc.APIs, Name: r.sc.Name, RunID: r.env.runID,
		Dir: dir, Boost: r.env.boost, PostgresURL: r.env.postgresURL, RedisURL: r.env.redisURL, Log: r.log, Ports: r.env.ports})
	if err != nil {
		return err
	}
	r.stack = st
	adm := r.admin()
	if r.tenant, err = adm.setUpTenant(ctx, "chaos "+r.sc.Name); err != nil {
		return err
	}
	r.reader, err = st.openReader(ctx, r.tenant.ProjectID)
	return err
}

func (r *scenarioRun) admin() *admin {
	return &admin{base: r.stack.apiURLs[0], token: r.stack.adminToken, client: newHTTPClient()}
}

// measure runs the load, the faults and the revocation probe, drains and
// verifies.
func (r *scenarioRun) measure(ctx context.Context, res *result) {
	p := r.plan
	ld := newLoader(loadConfig{Targets: r.stack.apiURLs, Publishable: r.tenant.Publishable.Plaintext,
		Secret: r.tenant.Secret.Plaintext, Rate: p.Rate, Workers: p.Workers, Duration: p.Load, RetryFor: p.RetryFor,
		Seed: r.seed, Prefix: "chaos-" + r.env.runID + "-" + r.sc.Name}, r.ledger)
	smp := startSampler(ctx, p.SampleEvery, r.reader.countEvents, r.ledger.acceptedCount)
	start := time.Now()
	r.log.Info("load started", "duration", p.Load, "rate", p.Rate)

	faults := make(chan []faultRecord, 1)
	go func() { faults <- r.injectFaults(ctx, start) }()
	revoked := make(chan *revocationResult, 1)
	go func() {
		if !r.sc.Revocation {
			revoked <- nil
			return
		}
		revoked <- r.measureRevocation(ctx, start.Add(p.Load*3/10))
	}()

	ld.run(ctx)
	res.Kills = <-faults
	res.Revocation = <-revoked
	c := ld.stats
	res.Load = loadCounts{Requests: c.Requests.Load(), Attempts: c.Attempts.Load(), Status5xx: c.Status5xx.Load(),
		Status429: c.Status429.Load(), Status4xx: c.Status4xx.Load(), NetErrors: c.NetErrors.Load(), GaveUp: c.GaveUp.Load()}
	r.log.Info("load finished; draining", "accepted", r.ledger.acceptedCount())

	res.Drain, res.Drained = r.drain(ctx, p.DrainTimeout)
	res.Stall = longestStall(smp.finish())
	r.log.Info("verifying", "drained", res.Drained, "drain", res.Drain)
	res.Verdict = r.verify(ctx)
}

// injectFaults runs the scenario's kill schedule.
func (r *scenarioRun) injectFaults(ctx context.Context, start time.Time) []faultRecord {
	if r.sc.Target == "" {
		return nil
	}
	rng := rand.New(rand.NewPCG(r.seed, 0xfa017))
	var out []faultRecord
	for _, k := range killSchedule(rng, r.plan.Load, r.plan.Kills, r.sc.MinDown, r.sc.MaxDown) {
		if !sleepUntil(ctx, start.Add(k.At)) {
			break
		}
		target := r.sc.Target
		if target == "nats-*" {
			target = fmt.Sprintf("nats-%d", rng.IntN(len(r.stack.natsNodes))+1)
		}
		out = append(out, r.killAndRestart(ctx, target, start, k.Down))
	}
	return out
}

// killAndRestart SIGKILLs target, waits down, starts it again and waits
// until it is ready.
func (r *scenarioRun) killAndRestart(ctx context.Context, target string, start time.Time, down time.Duration) faultRecord {
	rec := faultRecord{Target: target, At: time.Since(start), Down: down, Ready: -1}
	p := r.stack.byName[target]
	pid := p.pid()
	if err := p.kill(); err != nil {
		rec.Err = err.Error()
		return rec
	}
	r.log.Info("SIGKILL", "process", target, "pid", pid, "down", down)
	sleepUntil(ctx, time.Now().Add(down))
	if err := p.start(); err != nil {
		rec.Err = err.Error()
		return rec
	}
	restarted := time.Now()
	if err := p.waitReady(ctx, 60*time.Second); err != nil {
		rec.Err = err.Error()
		return rec
	}
	rec.Ready = time.Since(restarted)
	r.log.Info("restarted", "process", target, "ready after", rec.Ready)
	return rec
}

// drain polls the read model until every accepted event is stored and no
// event of the project is pending, or timeout passes.
func (r *scenarioRun) drain(ctx context.Context, timeout time.Duration) (time.Duration, bool) {
	accepted := r.ledger.acceptedIDs()
	start := time.Now()
	for {
		st, err := r.reader.statuses(ctx)
		if err == nil && drained(accepted, st) {
			return time.Since(start), true
		}
		if time.Since(start) > timeout || !sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
			return time.Since(start), false
		}
	}
}

// drained reports whether every accepted id is stored and nothing pends.
func drained(accepted map[string]bool, statuses map[string]string) bool {
	for id := range accepted {
		if _, ok := statuses[id]; !ok {
			return false
		}
	}
	for _, s := range statuses {
		if s == statusPending {
			return false
		}
	}
	return true
}

// verify reads the read model and the Kafka log and compares.
func (r *scenarioRun) verify(ctx context.Context) verdict {
	offers, conflicts := r.ledger.snapshot()
	snap, err := r.reader.snapshot(ctx)
	if err != nil {
		return verdict{Failures: []string{"READ MODEL: " + err.Error()}}
	}
	counts, kerr := countTracked(ctx, r.stack.brokers, r.stack.eventsTopic, r.tenant.ProjectID)
	project := r.tenant.ProjectID
	return verify(verifyInput{Offers: offers, Conflicts: conflicts, Snapshot: snap, Kafka: counts, KafkaErr: kerr,
		ExpectedID: func(m string) string { return domain.EventIDFor(project, m) }})
}

// scenarioSeed derives a scenario's seed from the run's, so a scenario
// gets the same schedule whichever others run with it.
func scenarioSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return seed ^ h.Sum64()
}
