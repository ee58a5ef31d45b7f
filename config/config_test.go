package config

import (
	"strings"
	"testing"
	"time"
)

func fromMap(m map[string]string) (Config, error) {
	return FromEnv(func(k string) string { return m[k] })
}

// TestDefaults: with nothing set every setting has its documented default.
func TestDefaults(t *testing.T) {
	c, err := fromMap(nil)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.Port != 3000 || c.NATSPrefix != "boost" || c.Topics.Events != "boost.events" || c.Topics.Partitions != 6:
		t.Errorf("basics: %+v", c)
	case c.TrackLinger != time.Millisecond || c.ConsistencyTimeout != 10*time.Second || c.StallAfter != 30*time.Second:
		t.Errorf("durations: linger %s, consistency %s, stall %s", c.TrackLinger, c.ConsistencyTimeout, c.StallAfter)
	case c.RateLimit != 10000 || c.RateBurst != 20000 || c.WorkerParallelism != 512 || c.AuthFailures != 10:
		t.Errorf("tuning: %+v", c)
	case len(c.KafkaBrokers) != 0 || c.AdminTokenSHA256 != "":
		t.Errorf("brokers %v, token %q", c.KafkaBrokers, c.AdminTokenSHA256)
	}
}

// TestFromEnv: values are read, and every bad one is named in one error.
func TestFromEnv(t *testing.T) {
	c, err := fromMap(map[string]string{"KAFKA_BROKERS": " a:9092, ,b:9092 ", "BOOST_TRACK_LINGER": "0",
		"BOOST_ADMIN_TOKEN": "secret", "BOOST_RATE_LIMIT": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.KafkaBrokers, ",") != "a:9092,b:9092" || c.TrackLinger != 0 || c.AdminTokenSHA256 != HashToken("secret") ||
		c.RateLimit != 0 || c.RateBurst != 500 {
		t.Errorf("read %+v", c)
	}
	_, err = fromMap(map[string]string{"PORT": "x", "BOOST_TRACK_LINGER": "2s", "BOOST_STALL_AFTER": "-1s",
		"BOOST_NATS_REPLICAS": "7", "BOOST_AUTH_FAILURES": "0", "BOOST_RATE_LIMIT": "-3"})
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, name := range []string{"PORT", "BOOST_TRACK_LINGER", "BOOST_STALL_AFTER", "BOOST_NATS_REPLICAS",
		"BOOST_AUTH_FAILURES", "BOOST_RATE_LIMIT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
}
