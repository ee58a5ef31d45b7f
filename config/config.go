// Package config reads Boost's settings from environment variables. Every
// variable is documented in the README's configuration table.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gamify/boost/bus"
)

// Config is everything a Boost process can be told.
type Config struct {
	Port               int
	DataDir            string
	AdminTokenSHA256   string // hex; the plaintext is never kept
	DatabaseURL        string
	NATSURL            string
	KafkaBrokers       []string
	RedisURL           string
	LogLevel           string
	LogFormat          string
	NATSPrefix         string
	Topics             bus.Topics
	ConsistencyTimeout time.Duration
	// TrackLinger is how long a track request may wait to be stored with
	// concurrent ones as one command (0: never).
	TrackLinger time.Duration
	// DashboardSessionTTL is how long a dashboard sign-in lasts.
	DashboardSessionTTL time.Duration
	DevNATSAddr         string
	DevKafkaPort        int
	// RateLimit is events per second per key (0: off), RateBurst the bucket.
	RateLimit            float64
	RateBurst            int
	KeyCacheTTL          time.Duration
	KeyUsageInterval     time.Duration
	WorkerParallelism    int
	ProcessorParallelism int
	TrackedMaxAge        time.Duration
	// StallAfter is how long a stage may hold waiting work without
	// progress before health reads it stalled.
	StallAfter time.Duration
	// InstanceID is the projector's static identity in its Kafka consumer
	// groups: a restarted projector with the same one takes its partitions
	// back at once. Empty: the host name and the port.
	InstanceID string
	// Bind is the host the HTTP server listens on: "" for every interface
	// (the roles, in containers), 127.0.0.1 for boost dev unless told.
	Bind string
	// AuthFailures wrong admin tokens an address may send per
	// AuthFailureWindow before it is refused for a while.
	AuthFailures      int
	AuthFailureWindow time.Duration
	// NATSReplicas is the replica count of the JetStream streams the roles
	// create (3 on a three-node cluster).
	NATSReplicas int
}

// FromEnv reads the configuration through getenv (os.Getenv in main, a map
// in tests).
func FromEnv(getenv func(string) string) (Config, error) {
	e := &env{getenv: getenv}
	c := Config{
		Port:        e.int("PORT", "3000"),
		DataDir:     e.str("BOOST_DATA_DIR", ".boost"),
		DatabaseURL: e.str("DATABASE_URL", ""),
		NATSURL:     e.str("NATS_URL", ""),
		RedisURL:    e.str("REDIS_URL", ""),
		LogLevel:    e.str("BOOST_LOG_LEVEL", "info"),
		LogFormat:   e.str("BOOST_LOG_FORMAT", ""),
		NATSPrefix:  e.str("BOOST_NATS_PREFIX", "boost"),
		Topics: bus.Topics{
			Tenancy:     e.str("BOOST_KAFKA_TOPIC_TENANCY", "boost.tenancy"),
			Events:      e.str("BOOST_KAFKA_TOPIC_EVENTS", "boost.events"),
			Partitions:  int32(e.int("BOOST_KAFKA_PARTITIONS", "6")),
			Replication: int16(e.int("BOOST_KAFKA_REPLICATION", "1")),
		},
		Bind:         e.str("BOOST_BIND", ""),
		DevNATSAddr:  e.str("BOOST_DEV_NATS_ADDR", "127.0.0.1:4223"),
		DevKafkaPort: e.int("BOOST_DEV_KAFKA_PORT", "9092"),
		InstanceID:   e.str("BOOST_INSTANCE_ID", ""),
	}
	for _, s := range strings.Split(e.str("KAFKA_BROKERS", ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.KafkaBrokers = append(c.KafkaBrokers, s)
		}
	}
	if t := e.str("BOOST_ADMIN_TOKEN", ""); t != "" {
		c.AdminTokenSHA256 = HashToken(t)
	}
	e.durations(&c)
	e.tuning(&c)
	e.check(&c)
	if len(e.errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(e.errs, "; "))
	}
	return c, nil
}

// env reads variables and collects what is wrong with them, so one error
// names every bad setting at once.
type env struct {
	getenv func(string) string
	errs   []string
}

func (e *env) str(k, def string) string {
	if v := strings.TrimSpace(e.getenv(k)); v != "" {
		return v
	}
	return def
}

func (e *env) int(k, def string) int {
	n, err := strconv.Atoi(e.str(k, def))
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s must be an integer", k))
	}
	return n
}

// dur reads a positive duration.
func (e *env) dur(k, def string) time.Duration {
	d, err := time.ParseDuration(e.str(k, def))
	if err != nil || d <= 0 {
		e.errs = append(e.errs, k+" must be a positive duration such as "+def)
	}
	return d
}

func (e *env) durations(c *Config) {
	c.ConsistencyTimeout = e.dur("BOOST_CONSISTENCY_TIMEOUT", "10s")
	if d, err := time.ParseDuration(e.str("BOOST_TRACK_LINGER", "1ms")); err != nil || d < 0 || d > time.Second {
		e.errs = append(e.errs, "BOOST_TRACK_LINGER must be a duration from 0 to 1s, such as 1ms")
	} else {
		c.TrackLinger = d
	}
	c.KeyCacheTTL = e.dur("BOOST_KEY_CACHE_TTL", "60s")
	c.DashboardSessionTTL = e.dur("BOOST_DASHBOARD_SESSION_TTL", "12h")
	c.KeyUsageInterval = e.dur("BOOST_KEY_USAGE_INTERVAL", "30s")
	c.TrackedMaxAge = e.dur("BOOST_TRACKED_RETENTION", "72h")
	c.StallAfter = e.dur("BOOST_STALL_AFTER", "30s")
	c.AuthFailureWindow = e.dur("BOOST_AUTH_FAILURE_WINDOW", "1m")
}

func (e *env) tuning(c *Config) {
	c.AuthFailures = e.int("BOOST_AUTH_FAILURES", "10")
	c.WorkerParallelism = e.int("BOOST_WORKER_PARALLELISM", "512")
	c.ProcessorParallelism = e.int("BOOST_PROCESSOR_PARALLELISM", "512")
	c.NATSReplicas = e.int("BOOST_NATS_REPLICAS", "1")
	c.RateBurst = e.int("BOOST_RATE_LIMIT_BURST", "0")
	rate, err := strconv.ParseFloat(e.str("BOOST_RATE_LIMIT", "10000"), 64)
	if err != nil || rate < 0 {
		e.errs = append(e.errs, "BOOST_RATE_LIMIT must be a non-negative number of events per second (0 turns it off)")
	}
	c.RateLimit = rate
	if c.RateBurst <= 0 {
		c.RateBurst = max(int(2*rate), 500)
	}
}

// check refuses values out of range.
func (e *env) check(c *Config) {
	for _, bad := range []struct {
		wrong bool
		why   string
	}{
		{c.AuthFailures < 1, "BOOST_AUTH_FAILURES must be at least 1"},
		{c.Port < 0 || c.Port > 65535, "PORT must be from 0 to 65535"},
		{c.NATSReplicas < 1 || c.NATSReplicas > 5, "BOOST_NATS_REPLICAS must be from 1 to 5"},
		{c.Topics.Partitions < 1, "BOOST_KAFKA_PARTITIONS must be at least 1"},
		{c.Topics.Replication < 1, "BOOST_KAFKA_REPLICATION must be at least 1"},
	} {
		if bad.wrong {
			e.errs = append(e.errs, bad.why)
		}
	}
}

// HashToken is how the admin token is held in memory and on disk.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
