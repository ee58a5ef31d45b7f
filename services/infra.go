package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/bus"
	"github.com/gamify/boost/health"
	"github.com/gamify/boost/internal/retry"
)

// infra is what a node's roles share: the names of streams and subjects,
// JetStream with its streams created, the Kafka client with its topics
// created, and the readiness checks of each dependency.
type infra struct {
	names  bus.Names
	wlog   watermill.LoggerAdapter
	js     jetstream.JetStream // nil when no role needs NATS
	kafka  *kgo.Client         // nil when no role needs Kafka
	checks []health.Check
}

func (i *infra) close() {
	if i.kafka != nil {
		i.kafka.Close()
	}
}

// infrastructure waits for the dependencies the node's roles need and
// prepares them (streams, topics), so roles started before their
// infrastructure wait for it instead of crashing.
func (n *Node) infrastructure(ctx context.Context) (*infra, error) {
	inf := &infra{names: bus.Names{Prefix: n.Config.NATSPrefix}, checks: append([]health.Check{}, n.ExtraChecks...),
		wlog: watermill.NewSlogLoggerWithLevelMapping(n.Log.With("component", "watermill"),
			map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})}
	need := NeedsOf(n.Roles)
	if need.NATS {
		if err := n.jetStream(ctx, inf); err != nil {
			return nil, err
		}
	}
	if need.DB {
		if n.DB == nil {
			return nil, errors.New("roles need a database but none was given")
		}
		inf.checks = append(inf.checks, health.Check{Name: "database", Probe: n.DB.Ping})
	}
	if n.Redis != nil {
		inf.checks = append(inf.checks, health.Check{Name: "redis", Probe: func(ctx context.Context) error {
			if err := n.Redis.Do(ctx, n.Redis.B().Ping().Build()).Error(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		}})
	}
	if need.Kafka {
		if err := n.kafkaTopics(ctx, inf); err != nil {
			inf.close()
			return nil, err
		}
	}
	return inf, nil
}

func (n *Node) jetStream(ctx context.Context, inf *infra) error {
	if n.NATS == nil {
		return errors.New("roles need NATS but no connection was given")
	}
	js, err := jetstream.New(n.NATS)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := retry.Forever(ctx, n.Log, "creating JetStream streams", func() error {
		return bus.EnsureStreams(ctx, js, inf.names, bus.StreamOptions{Replicas: n.Config.NATSReplicas,
			TrackedMaxAge: n.Config.TrackedMaxAge})
	}); err != nil {
		return err
	}
	inf.js = js
	inf.checks = append(inf.checks, health.Check{Name: "jetstream", Probe: func(ctx context.Context) error {
		return bus.PingJetStream(ctx, js)
	}})
	return nil
}

func (n *Node) kafkaTopics(ctx context.Context, inf *infra) error {
	kafka, err := bus.NewKafkaClient(n.Config.KafkaBrokers, kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return err
	}
	inf.kafka = kafka
	if err := retry.Forever(ctx, n.Log, "creating Kafka topics", func() error {
		return bus.EnsureTopics(ctx, kafka, n.Config.Topics)
	}); err != nil {
		return err
	}
	inf.checks = append(inf.checks, health.Check{Name: "kafka", Probe: func(ctx context.Context) error {
		return bus.PingKafka(ctx, kafka)
	}})
	return nil
}
