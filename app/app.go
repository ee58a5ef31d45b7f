// Package app is Boost's application layer: every use case — create an
// organization, a project or a key, revoke a key, send a test event, ingest
// events, authenticate a key, reprocess a quarantined record — as a command
// or query with error kinds of its own, whatever port calls it. The HTTP
// API and the dashboard are thin ports over it: they decode a request into
// a command and show the result or the error kind their own way; another
// port (another ingestion dialect, a CLI) does the same. Logging and metrics
// are decorators put on every use case once, here.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gamify/boost/apikeys"
	"github.com/gamify/boost/commands"
	"github.com/gamify/boost/quarantine"
	"github.com/gamify/boost/queries"
	"github.com/gamify/boost/ratelimit"
	"github.com/gamify/boost/readmodel"
)

// Handler is one use case.
type Handler[C, R any] interface {
	Handle(ctx context.Context, c C) (R, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[C, R any] func(ctx context.Context, c C) (R, error)

// Handle implements Handler.
func (f HandlerFunc[C, R]) Handle(ctx context.Context, c C) (R, error) { return f(ctx, c) }

// Application is every use case.
type Application struct {
	Commands Commands
	Queries  Queries
}

// Commands change something.
type Commands struct {
	CreateOrganization Handler[CreateOrganization, Created[readmodel.Organization]]
	CreateProject      Handler[CreateProject, Created[readmodel.Project]]
	CreateKey          Handler[CreateKey, CreatedKey]
	RevokeKey          Handler[RevokeKey, Created[readmodel.APIKey]]
	SendTestEvent      Handler[SendTestEvent, string]
	Ingest             Handler[Ingest, Ingested]
	Reprocess          Handler[Reprocess, quarantine.Record]
}

// Queries read. The read models' own queries are used as they are: they
// are the read side already, and each request is logged by its port.
type Queries struct {
	Authenticate Handler[Authenticate, *apikeys.Key]
	Read         *queries.Queries
	Quarantine   QuarantineReader // nil when this process serves no quarantine
}

// QuarantineReader lists quarantined records.
type QuarantineReader interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Record, error)
	Get(ctx context.Context, id string) (quarantine.Record, error)
	// Counts returns how many records each stage holds.
	Counts(ctx context.Context) (map[string]int, error)
}

// CommandSender stores commands durably for their handlers.
type CommandSender interface {
	Send(ctx context.Context, cmd commands.Command) error
	SendBatch(ctx context.Context, cmds []commands.Command) error
}

// Metrics receives what the use cases did.
type Metrics interface {
	UseCase(name, outcome string, took time.Duration)
	Ingested(result string, n int)
}

// Config is what the use cases need.
type Config struct {
	Commands CommandSender
	Read     *queries.Queries
	Auth     *apikeys.Authenticator
	Usage    *apikeys.UsageRecorder // nil: last_used_at not recorded
	Limiter  ratelimit.Limiter      // nil: no rate limit
	// Quarantine lists and reprocesses set-aside records; nil: none.
	Quarantine *quarantine.Service
	// ConsistencyTimeout bounds how long a create waits to read its own
	// write back (10 s when zero).
	ConsistencyTimeout time.Duration
	// TrackLinger is how long a request's tracked events may wait for
	// those of concurrent requests to be stored with them as one command
	// (group commit; 0 sends every request on its own).
	TrackLinger time.Duration
	Log         *slog.Logger
	Metrics     Metrics
}

func (c *Config) validate() error {
	switch {
	case c.Commands == nil || c.Read == nil || c.Auth == nil:
		return errors.New("app: a command sender, the read models and an authenticator are required")
	case c.Log == nil || c.Metrics == nil:
		return errors.New("app: a logger and metrics are required")
	case c.ConsistencyTimeout < 0:
		return errors.New("app: the consistency timeout must not be negative")
	case c.TrackLinger < 0 || c.TrackLinger > time.Second:
		return fmt.Errorf("app: the track linger must be between 0 and 1s, not %s", c.TrackLinger)
	}
	if c.ConsistencyTimeout == 0 {
		c.ConsistencyTimeout = 10 * time.Second
	}
	return nil
}

// New builds the application, every use case behind its decorators.
func New(cfg Config) (*Application, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &tenancy{send: cfg.Commands, read: cfg.Read, wait: cfg.ConsistencyTimeout, metrics: cfg.Metrics}
	in := &ingestion{group: newGroupCommit(cfg.Commands.SendBatch, cfg.TrackLinger), auth: cfg.Auth, usage: cfg.Usage, limiter: cfg.Limiter, metrics: cfg.Metrics}
	o := observer{log: cfg.Log, metrics: cfg.Metrics}
	a := &Application{
		Commands: Commands{
			CreateOrganization: observe(o, "CreateOrganization", HandlerFunc[CreateOrganization, Created[readmodel.Organization]](t.createOrganization)),
			CreateProject:      observe(o, "CreateProject", HandlerFunc[CreateProject, Created[readmodel.Project]](t.createProject)),
			CreateKey:          observe(o, "CreateKey", HandlerFunc[CreateKey, CreatedKey](t.createKey)),
			RevokeKey:          observe(o, "RevokeKey", HandlerFunc[RevokeKey, Created[readmodel.APIKey]](t.revokeKey)),
			SendTestEvent:      observe(o, "SendTestEvent", HandlerFunc[SendTestEvent, string](t.sendTestEvent)),
			Ingest:             observe(o, "Ingest", HandlerFunc[Ingest, Ingested](in.ingest)),
		},
		Queries: Queries{
			Authenticate: observe(o, "Authenticate", HandlerFunc[Authenticate, *apikeys.Key](in.authenticate)),
			Read:         cfg.Read,
		},
	}
	if cfg.Quarantine != nil {
		a.Commands.Reprocess = observe(o, "Reprocess", HandlerFunc[Reprocess, quarantine.Record](reprocessor{cfg.Quarantine}.reprocess))
		a.Queries.Quarantine = quarantineReader{cfg.Quarantine}
	}
	return a, nil
}
