package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/domain"
)

// Topics says where the bridge writes each kind of domain event and how the
// topics are created when missing.
type Topics struct {
	Tenancy     string // organizations, projects, API keys and their usage
	Events      string // tracked events (high volume)
	Partitions  int32
	Replication int16
}

// For picks the topic an event belongs to.
func (t Topics) For(e *domain.Event) string { return t.ForAggregate(e.AggregateType) }

// ForAggregate picks the topic of an aggregate type's events.
func (t Topics) ForAggregate(aggregateType string) string {
	switch aggregateType {
	case domain.AggregateOrganization, domain.AggregateProject, domain.AggregateUsage:
		return t.Tenancy
	default:
		return t.Events
	}
}

// All lists every topic Boost writes.
func (t Topics) All() []string { return []string{t.Tenancy, t.Events} }

// EmbeddedKafka is kfake, franz-go's Kafka-protocol broker, persisted to a
// data directory and listening on loopback so kcat can read the log.
type EmbeddedKafka struct {
	cluster *kfake.Cluster
}

// StartEmbeddedKafka starts a one-broker kfake cluster storing under dir.
// port 0 picks a free port. On a data directory, a producer's retry of a
// batch the log already holds is answered from the log (guardRetries), so a
// broker killed mid-produce and started again does not append it twice.
func StartEmbeddedKafka(dir string, port int) (*EmbeddedKafka, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.ClusterID("boost-embedded"), kfake.Ports(port)}
	if dir != "" {
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded kafka: %w", err)
	}
	if dir != "" {
		ctx, cancel := context.WithTimeout(context.Background(), tailReadTimeout)
		defer cancel()
		if err := guardRetries(ctx, c); err != nil {
			c.Close()
			return nil, fmt.Errorf("starting embedded kafka: %w", err)
		}
	}
	return &EmbeddedKafka{cluster: c}, nil
}

// Addrs are the broker addresses to bootstrap from.
func (k *EmbeddedKafka) Addrs() []string { return k.cluster.ListenAddrs() }

// Close flushes the log to disk and stops the broker.
func (k *EmbeddedKafka) Close() { k.cluster.Close() }

// NewKafkaClient returns a franz-go client for brokers. Producing is
// idempotent with acks from all in-sync replicas (franz-go's defaults, made
// explicit here because the bridge relies on them).
func NewKafkaClient(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka: no brokers configured (KAFKA_BROKERS)")
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(kgoSlog{}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return cl, nil
}

// EnsureTopics creates any missing topic; existing ones are left alone.
func EnsureTopics(ctx context.Context, cl *kgo.Client, t Topics) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, t.Partitions, t.Replication, nil, t.All()...)
	if err != nil {
		return fmt.Errorf("%w: creating kafka topics: %v", ErrUnavailable, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating kafka topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// PingKafka checks a broker answers a metadata request.
func PingKafka(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// kgoSlog forwards franz-go's warnings and errors to slog; its info and
// debug chatter stay off.
type kgoSlog struct{}

func (kgoSlog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (kgoSlog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelWarn
	if level == kgo.LogLevelError {
		l = slog.LevelError
	}
	slog.Log(context.Background(), l, "kafka: "+msg, keyvals...)
}
