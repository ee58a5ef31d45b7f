package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrFailed is returned when a scenario found a loss, a duplicate, a
// stuck event or a slow revocation (or could not run).
var ErrFailed = errors.New("chaos: the suite found failures")

// Options configure a run of the suite.
type Options struct {
	Scenarios []string // empty: all
	Seed      uint64   // 0: pick one (printed)
	Soak      bool     // longer load, more kills
	Keep      bool     // keep data dirs, logs and databases
	Boost     string   // binary to run; empty: this executable
	// PostgresURL points at a maintenance database of the server the
	// scenarios create their databases on; RedisURL is the api's Redis.
	PostgresURL string
	RedisURL    string
	// Overrides of the plan; zero keeps the pass's value.
	Load         time.Duration
	Kills        int
	Rate         float64
	DrainTimeout time.Duration

	Out io.Writer    // tables
	Log *slog.Logger // progress
}

// suiteEnv is what every scenario of a run shares.
type suiteEnv struct {
	plan        plan
	seed        uint64
	runID       string
	dir         string
	boost       string
	postgresURL string
	redisURL    string
	keep        bool
	log         *slog.Logger
	ports       *ports
}

// Run runs the chosen scenarios one after the other and prints a table per
// scenario and a summary. It returns ErrFailed if any scenario failed.
func Run(ctx context.Context, o Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	scenarios, err := selectScenarios(o.Scenarios)
	if err != nil {
		return err
	}
	env, err := newSuiteEnv(ctx, o)
	if err != nil {
		return err
	}
	mode := "short pass"
	if o.Soak {
		mode = "soak"
	}
	fmt.Fprintf(o.Out, "boost chaos: %s, %d scenarios, seed %d (rerun with --seed %d), load %s at %.0f events/s, %d kills each\n",
		mode, len(scenarios), env.seed, env.seed, fmtDuration(env.plan.Load), env.plan.Rate, env.plan.Kills)
	fmt.Fprintf(o.Out, "logs and data: %s\n", env.dir)

	begin := time.Now()
	var results []*result
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			break
		}
		o.Log.Info("scenario", "name", sc.Name, "about", sc.About)
		r := runScenario(ctx, env, sc)
		results = append(results, r)
		writeScenario(o.Out, r)
	}
	writeSummary(o.Out, results)
	fmt.Fprintf(o.Out, "\nsuite took %s\n", fmtDuration(time.Since(begin)))

	failed := ctx.Err() != nil
	for _, r := range results {
		failed = failed || !r.Passed()
	}
	switch {
	case failed:
		fmt.Fprintf(o.Out, "FAILED — child process logs and data are in %s\n", env.dir)
		return ErrFailed
	case o.Keep:
		fmt.Fprintf(o.Out, "PASSED — kept logs and data in %s\n", env.dir)
	default:
		fmt.Fprintln(o.Out, "PASSED")
		if err := os.RemoveAll(env.dir); err != nil {
			o.Log.Warn("removing the run's directory", "dir", env.dir, "err", err)
		}
	}
	return nil
}

func newSuiteEnv(ctx context.Context, o Options) (*suiteEnv, error) {
	p := shortPlan
	if o.Soak {
		p = soakPlan
	}
	if o.Load > 0 {
		p.Load = o.Load
	}
	if o.Kills > 0 {
		p.Kills = o.Kills
	}
	if o.Rate > 0 {
		p.Rate = o.Rate
	}
	if o.DrainTimeout > 0 {
		p.DrainTimeout = o.DrainTimeout
	}
	boost := o.Boost
	if boost == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the boost binary (pass --boost): %w", err)
		}
		boost = exe
	}
	boost, err := filepath.Abs(boost)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(boost); err != nil {
		return nil, fmt.Errorf("the boost binary: %w", err)
	}
	if err := checkPostgres(ctx, o.PostgresURL); err != nil {
		return nil, err
	}
	if err := checkRedis(ctx, o.RedisURL); err != nil {
		return nil, err
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64N(1_000_000_000) + 1
	}
	runID := strconv.FormatInt(time.Now().Unix()%1_000_000, 36) + strconv.FormatUint(rand.Uint64N(36*36), 36)
	dir, err := os.MkdirTemp("", "boost-chaos-"+runID+"-")
	if err != nil {
		return nil, fmt.Errorf("creating the run's directory: %w", err)
	}
	return &suiteEnv{plan: p, seed: seed, runID: runID, dir: dir, boost: boost, postgresURL: o.PostgresURL,
		redisURL: o.RedisURL, keep: o.Keep, log: o.Log, ports: &ports{}}, nil
}

// checkPostgres makes sure the server answers before any scenario starts.
func checkPostgres(ctx context.Context, adminURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := openPostgresReader(ctx, adminURL, "")
	if err != nil {
		return fmt.Errorf("postgres (--postgres): %w", err)
	}
	r.close()
	return nil
}

// checkRedis sends PING to the Redis server of rawURL.
func checkRedis(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("redis (--redis): %q is not a redis:// URL", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("redis (--redis): %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return fmt.Errorf("redis (--redis): %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("redis (--redis): %w", err)
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis (--redis): PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
