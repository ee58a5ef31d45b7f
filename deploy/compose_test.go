package deploy_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The test runs with the package directory (deploy/) as working directory.
const (
	composeFile = "../docker-compose.yml"
	envExample  = "../.env.example"
	repoRoot    = ".."
)

// Boost services in docker-compose.yml. migrate is a one-shot command, the
// others are long-running roles.
var (
	roles        = []string{"api", "worker", "bridge", "projector"}
	boostSvcs    = append([]string{"migrate"}, roles...)
	infraSvcs    = []string{"postgres", "redis", "nats", "kafka"}
	healthcheck  = []string{"CMD", "/boost", "healthcheck"}
	apiPort      = uint32(3000)
	apiPublished = "3000"
)

// envTable is the configuration contract: every variable and the services
// that need it. It must stay in sync with the application's config loading.
var envTable = []struct {
	name     string
	services []string
}{
	{"PORT", roles},
	{"DATABASE_URL", []string{"migrate", "api", "projector"}},
	{"NATS_URL", []string{"api", "worker", "bridge"}},
	{"KAFKA_BROKERS", []string{"api", "bridge", "projector"}},
	{"REDIS_URL", []string{"api"}},
	{"BOOST_ADMIN_TOKEN", []string{"api"}},
	{"BOOST_LOG_LEVEL", boostSvcs},
	{"BOOST_LOG_FORMAT", boostSvcs},
	{"BOOST_NATS_PREFIX", []string{"api", "worker", "bridge"}},
	{"BOOST_KAFKA_TOPIC_TENANCY", []string{"bridge", "projector"}},
	{"BOOST_KAFKA_TOPIC_EVENTS", []string{"bridge", "projector"}},
	{"BOOST_KAFKA_PARTITIONS", []string{"bridge"}},
	{"BOOST_KAFKA_REPLICATION", []string{"bridge"}},
	{"BOOST_CONSISTENCY_TIMEOUT", []string{"api"}},
}

// usesDB reports whether svc needs the database (and so must wait for migrate).
func usesDB(svc string) bool {
	for _, e := range envTable {
		if e.name == "DATABASE_URL" {
			return slices.Contains(e.services, svc)
		}
	}
	return false
}

// loadProject loads docker-compose.yml hermetically: only env is available
// for interpolation (no OS environment, no .env file), so the defaults
// written in the file are what gets checked.
func loadProject(t *testing.T, env ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{composeFile},
		cli.WithWorkingDirectory(repoRoot),
		cli.WithEnv(env),
	)
	if err != nil {
		t.Fatalf("project options: %v", err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("%s is not a valid compose project: %v", composeFile, err)
	}
	return p
}

type check struct {
	name string
	fn   func(p *types.Project) error
}

// composeChecks returns every assertion made about the compose project, one
// per (service, property) so failures point at the exact gap.
func composeChecks() []check {
	var cs []check
	add := func(name string, fn func(p *types.Project) error) {
		cs = append(cs, check{name: name, fn: fn})
	}

	for _, svc := range append(slices.Clone(infraSvcs), boostSvcs...) {
		add("service/"+svc, func(p *types.Project) error {
			if _, ok := p.Services[svc]; !ok {
				return fmt.Errorf("service %q missing", svc)
			}
			return nil
		})
	}

	for _, e := range envTable {
		for _, svc := range e.services {
			add("env/"+svc+"/"+e.name, func(p *types.Project) error {
				s, err := service(p, svc)
				if err != nil {
					return err
				}
				v, ok := s.Environment[e.name]
				if !ok {
					return fmt.Errorf("%s: %s not set", svc, e.name)
				}
				if v == nil || strings.TrimSpace(*v) == "" {
					return fmt.Errorf("%s: %s is empty after interpolation", svc, e.name)
				}
				return nil
			})
		}
	}

	for _, svc := range boostSvcs {
		add("image/"+svc, func(p *types.Project) error {
			s, err := service(p, svc)
			if err != nil {
				return err
			}
			if s.Build == nil {
				return fmt.Errorf("%s: no build section", svc)
			}
			if s.Build.Dockerfile != "deploy/Dockerfile" {
				return fmt.Errorf("%s: build.dockerfile = %q, want deploy/Dockerfile", svc, s.Build.Dockerfile)
			}
			root, err := filepath.Abs(repoRoot)
			if err != nil {
				return err
			}
			if filepath.Clean(s.Build.Context) != root {
				return fmt.Errorf("%s: build.context = %q, want the repository root %q", svc, s.Build.Context, root)
			}
			api, err := service(p, "api")
			if err != nil {
				return err
			}
			if s.Image == "" || s.Image != api.Image {
				return fmt.Errorf("%s: image %q, want the shared boost image %q", svc, s.Image, api.Image)
			}
			return nil
		})
	}

	add("migrate/one-shot", func(p *types.Project) error {
		s, err := service(p, "migrate")
		if err != nil {
			return err
		}
		if !slices.Equal(s.Command, types.ShellCommand{"migrate"}) {
			return fmt.Errorf("migrate: command = %q, want [migrate]", s.Command)
		}
		if s.Restart != types.RestartPolicyNo {
			return fmt.Errorf("migrate: restart = %q, want %q", s.Restart, types.RestartPolicyNo)
		}
		if d, ok := s.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
			return errors.New("migrate: must depend on postgres with condition service_healthy")
		}
		return nil
	})

	for _, role := range roles {
		add("role/"+role, func(p *types.Project) error {
			s, err := service(p, role)
			if err != nil {
				return err
			}
			if !slices.Equal(s.Command, types.ShellCommand{role}) {
				return fmt.Errorf("%s: command = %q, want [%s]", role, s.Command, role)
			}
			if s.Restart != types.RestartPolicyUnlessStopped {
				return fmt.Errorf("%s: restart = %q, want %q", role, s.Restart, types.RestartPolicyUnlessStopped)
			}
			return nil
		})
		add("healthcheck/"+role, func(p *types.Project) error {
			s, err := service(p, role)
			if err != nil {
				return err
			}
			if s.HealthCheck == nil || s.HealthCheck.Disable {
				return fmt.Errorf("%s: no healthcheck", role)
			}
			if !slices.Equal(s.HealthCheck.Test, types.HealthCheckTest(healthcheck)) {
				return fmt.Errorf("%s: healthcheck test = %q, want %q", role, s.HealthCheck.Test, healthcheck)
			}
			return nil
		})
		if usesDB(role) {
			add("depends/"+role+"/migrate", func(p *types.Project) error {
				s, err := service(p, role)
				if err != nil {
					return err
				}
				d, ok := s.DependsOn["migrate"]
				if !ok {
					return fmt.Errorf("%s uses the database but does not depend on migrate", role)
				}
				if d.Condition != types.ServiceConditionCompletedSuccessfully {
					return fmt.Errorf("%s: depends_on migrate condition = %q, want %q",
						role, d.Condition, types.ServiceConditionCompletedSuccessfully)
				}
				return nil
			})
		}
	}

	add("ports/api", func(p *types.Project) error {
		s, err := service(p, "api")
		if err != nil {
			return err
		}
		for _, port := range s.Ports {
			if port.Target == apiPort && port.Published == apiPublished {
				return nil
			}
		}
		return fmt.Errorf("api: does not publish %s:%d (ports: %+v)", apiPublished, apiPort, s.Ports)
	})

	return cs
}

func service(p *types.Project, name string) (types.ServiceConfig, error) {
	s, ok := p.Services[name]
	if !ok {
		return s, fmt.Errorf("service %q missing", name)
	}
	return s, nil
}

func TestCompose(t *testing.T) {
	p := loadProject(t)
	for _, c := range composeChecks() {
		t.Run(c.name, func(t *testing.T) {
			if err := c.fn(p); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestComposeChecksDetectBreakage makes sure the checks above can fail: each
// case breaks a freshly loaded project and expects the named check to object.
func TestComposeChecksDetectBreakage(t *testing.T) {
	edit := func(name string, f func(s *types.ServiceConfig)) func(p *types.Project) {
		return func(p *types.Project) {
			s := p.Services[name]
			f(&s)
			p.Services[name] = s
		}
	}
	cases := []struct {
		name     string
		breakIt  func(p *types.Project)
		wantFail string
	}{
		{"api loses admin token", edit("api", func(s *types.ServiceConfig) {
			delete(s.Environment, "BOOST_ADMIN_TOKEN")
		}), "env/api/BOOST_ADMIN_TOKEN"},
		{"bridge partitions empty", edit("bridge", func(s *types.ServiceConfig) {
			empty := ""
			s.Environment["BOOST_KAFKA_PARTITIONS"] = &empty
		}), "env/bridge/BOOST_KAFKA_PARTITIONS"},
		{"migrate loses DATABASE_URL", edit("migrate", func(s *types.ServiceConfig) {
			delete(s.Environment, "DATABASE_URL")
		}), "env/migrate/DATABASE_URL"},
		{"projector stops waiting for migrate", edit("projector", func(s *types.ServiceConfig) {
			delete(s.DependsOn, "migrate")
		}), "depends/projector/migrate"},
		{"api waits only for migrate start", edit("api", func(s *types.ServiceConfig) {
			d := s.DependsOn["migrate"]
			d.Condition = types.ServiceConditionStarted
			s.DependsOn["migrate"] = d
		}), "depends/api/migrate"},
		{"worker without healthcheck", edit("worker", func(s *types.ServiceConfig) {
			s.HealthCheck = nil
		}), "healthcheck/worker"},
		{"api not published", edit("api", func(s *types.ServiceConfig) {
			s.Ports = nil
		}), "ports/api"},
		{"kafka removed", func(p *types.Project) {
			delete(p.Services, "kafka")
		}, "service/kafka"},
	}
	checks := composeChecks()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loadProject(t)
			tc.breakIt(p)
			i := slices.IndexFunc(checks, func(c check) bool { return c.name == tc.wantFail })
			if i < 0 {
				t.Fatalf("no check named %q", tc.wantFail)
			}
			if err := checks[i].fn(p); err == nil {
				t.Errorf("check %q passed on a broken project", tc.wantFail)
			}
		})
	}
}

// TestComposeInterpolation checks that the tunables really come from the
// environment / .env file rather than being hard-coded.
func TestComposeInterpolation(t *testing.T) {
	p := loadProject(t,
		"BOOST_ADMIN_TOKEN=from-env-token",
		"BOOST_LOG_LEVEL=debug",
		"BOOST_KAFKA_TOPIC_EVENTS=custom.events",
	)
	for _, tc := range []struct{ svc, key, want string }{
		{"api", "BOOST_ADMIN_TOKEN", "from-env-token"},
		{"worker", "BOOST_LOG_LEVEL", "debug"},
		{"migrate", "BOOST_LOG_LEVEL", "debug"},
		{"bridge", "BOOST_KAFKA_TOPIC_EVENTS", "custom.events"},
		{"projector", "BOOST_KAFKA_TOPIC_EVENTS", "custom.events"},
	} {
		t.Run(tc.svc+"/"+tc.key, func(t *testing.T) {
			if got := envValue(p, tc.svc, tc.key); got != tc.want {
				t.Errorf("%s: %s = %q, want %q", tc.svc, tc.key, got, tc.want)
			}
		})
	}
}

func envValue(p *types.Project, svc, key string) string {
	if v := p.Services[svc].Environment[key]; v != nil {
		return *v
	}
	return ""
}

// parseEnvFile reads KEY=VALUE lines, ignoring blank lines and comments.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			t.Errorf("%s:%d: not a KEY=VALUE line: %q", path, n, sc.Text())
			continue
		}
		if _, dup := vars[key]; dup {
			t.Errorf("%s:%d: %s set twice", path, n, key)
		}
		vars[key] = strings.Trim(strings.TrimSpace(value), `"'`)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

func TestEnvExample(t *testing.T) {
	vars := parseEnvFile(t, envExample)
	for _, e := range envTable {
		t.Run(e.name, func(t *testing.T) {
			v, ok := vars[e.name]
			if !ok {
				t.Fatalf("%s does not document %s", envExample, e.name)
			}
			if v == "" {
				t.Errorf("%s: %s has no example value", envExample, e.name)
			}
		})
	}
}

// TestEnvExampleMatchesComposeDefaults keeps the two files from drifting: a
// service's value with no environment at all (compose defaults) must equal
// the value documented in .env.example, and loading with .env.example as the
// .env file must give the same project.
func TestEnvExampleMatchesComposeDefaults(t *testing.T) {
	vars := parseEnvFile(t, envExample)
	var asEnv []string
	for k, v := range vars {
		asEnv = append(asEnv, k+"="+v)
	}
	defaults := loadProject(t)
	withExample := loadProject(t, asEnv...)
	for _, e := range envTable {
		for _, svc := range e.services {
			t.Run(svc+"/"+e.name, func(t *testing.T) {
				def := envValue(defaults, svc, e.name)
				if def != vars[e.name] {
					t.Errorf("compose default %s=%q differs from %s value %q", e.name, def, envExample, vars[e.name])
				}
				if got := envValue(withExample, svc, e.name); got != def {
					t.Errorf("with %s as .env: %s=%q, want %q", envExample, e.name, got, def)
				}
			})
		}
	}
}
