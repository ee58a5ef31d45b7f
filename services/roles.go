package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/config"
	"github.com/gamify/boost/metrics"
	"github.com/gamify/boost/store"
)

// RunRoles runs roles against the distributed infrastructure named in cfg
// (DATABASE_URL, NATS_URL, KAFKA_BROKERS). It refuses to start on missing
// configuration or an unmigrated database.
func RunRoles(ctx context.Context, cfg config.Config, roles []string, version string, log *slog.Logger, started func(*Node)) error {
	need := NeedsOf(roles)
	var missing []error
	if need.DB && cfg.DatabaseURL == "" {
		missing = append(missing, errors.New("DATABASE_URL is required"))
	}
	if need.NATS && cfg.NATSURL == "" {
		missing = append(missing, errors.New("NATS_URL is required"))
	}
	if need.Kafka && len(cfg.KafkaBrokers) == 0 {
		missing = append(missing, errors.New("KAFKA_BROKERS is required"))
	}
	if slices.Contains(roles, RoleAPI) && cfg.AdminTokenSHA256 == "" {
		missing = append(missing, errors.New("BOOST_ADMIN_TOKEN is required for the api role"))
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot start %v: %w", roles, errors.Join(missing...))
	}

	node := &Node{Config: cfg, Roles: roles, Version: version, Log: log, Metrics: metrics.New()}
	if need.DB {
		db, err := store.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.CheckMigrated(ctx); err != nil {
			return err
		}
		node.DB = db
	}
	if need.NATS {
		nc, err := bus.ConnectNATS(cfg.NATSURL, "boost-"+fmt.Sprint(roles))
		if err != nil {
			return err
		}
		defer nc.Close()
		node.NATS = nc
		node.Dial = func(name string) (*nats.Conn, error) { return bus.ConnectNATS(cfg.NATSURL, name) }
	}
	if cfg.RedisURL != "" && (slices.Contains(roles, RoleAPI) || slices.Contains(roles, RoleProjector)) {
		rc, err := ConnectRedis(cfg.RedisURL)
		if err != nil {
			return err
		}
		defer rc.Close()
		node.Redis = rc
	}
	if started != nil {
		go func() {
			select {
			case <-node.Ready():
				started(node)
			case <-ctx.Done():
			}
		}()
	}
	return node.Run(ctx)
}

// Migrate applies pending migrations to the database at url.
func Migrate(ctx context.Context, url string) ([]string, error) {
	db, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Migrate(ctx)
}

// ConnectRedis opens a rueidis client (RESP3, client-side caching on).
func ConnectRedis(url string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parsing REDIS_URL: %w", err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("connecting to redis: %w", err)
	}
	return rc, nil
}
