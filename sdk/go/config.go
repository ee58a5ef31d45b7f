package boost

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is the SDK's version; the User-Agent carries its major.minor.
const Version = "0.1.0"

const userAgent = "boost-go/0.1"

// Defaults used for zero Config fields.
const (
	DefaultBatchSize      = 100
	DefaultFlushInterval  = time.Second
	DefaultMaxQueueSize   = 10_000
	DefaultMaxAttempts    = 8
	DefaultRetryBaseDelay = 200 * time.Millisecond
	DefaultRetryMaxDelay  = 10 * time.Second
	DefaultMaxRetryTime   = time.Minute
	defaultHTTPTimeout    = 30 * time.Second
)

// Config configures a Client. Only APIKey and Endpoint are required; a
// zero field takes its default and a negative one is an error.
type Config struct {
	// APIKey is a secret key, "sk_live_" followed by 64 hex characters.
	APIKey string
	// Endpoint is the base URL of the Boost API, e.g.
	// "http://localhost:3000"; a path prefix is kept.
	Endpoint string

	// HTTPClient sends the requests; nil means a client with a 30s
	// timeout. Retries are the SDK's, so a client that retries by itself
	// would multiply them.
	HTTPClient *http.Client
	// UserAgent, if set, is put before "boost-go/0.1" in the User-Agent
	// header, so the server's logs show both your service and the SDK.
	UserAgent string

	// BatchSize is how many queued events trigger a send, and the most
	// sent in one request (default 100, at most 500).
	BatchSize int
	// FlushInterval is how often queued events are sent even if fewer
	// than BatchSize are waiting (default 1s): it bounds how stale an
	// event can be on the server in quiet periods.
	FlushInterval time.Duration
	// MaxQueueSize bounds the events held in memory, queued or being
	// sent (default 10,000). When it is reached new events are dropped
	// with ErrQueueFull, so an outage cannot exhaust the process' memory.
	MaxQueueSize int

	// MaxAttempts bounds the requests made for one batch (default 8).
	MaxAttempts int
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff
	// with full jitter: before retry n the SDK waits a random duration
	// in [0, min(RetryMaxDelay, RetryBaseDelay·2^(n-1))], unless the
	// server sent Retry-After, which is honoured as given (defaults 200ms
	// and 10s).
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// MaxRetryTime bounds the time spent retrying one batch, waits
	// included (default 1m). A wait that would end past it is not
	// started; the batch is reported as failed instead.
	MaxRetryTime time.Duration

	// OnError receives every event lost after it was queued (a
	// *RejectedError or a *DeliveryError, with messageIds) and every
	// ErrQueueFull. It is called from the SDK's goroutine (from Track's
	// caller for ErrQueueFull) and must not block; it may call Track but
	// not Flush or Close. Nil means the errors are logged with the log
	// package.
	OnError func(error)
	// OnDelivered, if set, receives the events the server accepted, with
	// the ids it stored them under, after each request. It runs on the
	// SDK's goroutine and must not block. It is how a caller (or a test)
	// learns an event's server id, e.g. to look it up later.
	OnDelivered func([]Delivered)
}

// Delivered pairs an accepted event's messageId with the id the server
// stored it under (derived from the project and the messageId, so it is
// the same for every resend).
type Delivered struct {
	MessageID string
	ID        string
}

const (
	secretPrefix      = "sk_live_"
	publishablePrefix = "pk_live_"
	keyHexLen         = 64
)

// checkKey accepts exactly what the server can accept from a server.
func checkKey(key string) error {
	if strings.HasPrefix(key, publishablePrefix) {
		return ErrPublishableKey
	}
	if !strings.HasPrefix(key, secretPrefix) || len(key) != len(secretPrefix)+keyHexLen {
		return ErrMalformedKey
	}
	for _, c := range key[len(secretPrefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ErrMalformedKey
		}
	}
	return nil
}

// resolve checks cfg and fills in defaults.
func (cfg Config) resolve() (Config, string, error) {
	if err := checkKey(cfg.APIKey); err != nil {
		return cfg, "", err
	}
	batchURL, err := batchEndpoint(cfg.Endpoint)
	if err != nil {
		return cfg, "", err
	}
	var errs []error
	intDefault := func(name string, v *int, def, max int) {
		switch {
		case *v < 0:
			errs = append(errs, fmt.Errorf("boost: %s must not be negative", name))
		case *v == 0:
			*v = def
		case max > 0 && *v > max:
			errs = append(errs, fmt.Errorf("boost: %s must be at most %d", name, max))
		}
	}
	durDefault := func(name string, v *time.Duration, def time.Duration) {
		switch {
		case *v < 0:
			errs = append(errs, fmt.Errorf("boost: %s must not be negative", name))
		case *v == 0:
			*v = def
		}
	}
	intDefault("BatchSize", &cfg.BatchSize, DefaultBatchSize, MaxBatchSize)
	intDefault("MaxQueueSize", &cfg.MaxQueueSize, DefaultMaxQueueSize, 0)
	intDefault("MaxAttempts", &cfg.MaxAttempts, DefaultMaxAttempts, 0)
	durDefault("FlushInterval", &cfg.FlushInterval, DefaultFlushInterval)
	durDefault("RetryBaseDelay", &cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	durDefault("RetryMaxDelay", &cfg.RetryMaxDelay, DefaultRetryMaxDelay)
	durDefault("MaxRetryTime", &cfg.MaxRetryTime, DefaultMaxRetryTime)
	if err := errors.Join(errs...); err != nil {
		return cfg, "", err
	}
	if cfg.RetryMaxDelay < cfg.RetryBaseDelay {
		cfg.RetryMaxDelay = cfg.RetryBaseDelay
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = userAgent
	} else {
		cfg.UserAgent += " " + userAgent
	}
	if cfg.OnError == nil {
		cfg.OnError = func(err error) { log.Print(err) }
	}
	return cfg, batchURL, nil
}

func batchEndpoint(endpoint string) (string, error) {
	if strings.TrimSpace(endpoint) == "" {
		return "", errors.New("boost: Endpoint is required, e.g. http://localhost:3000")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("boost: Endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("boost: Endpoint must be an http or https URL with a host, not %q", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("boost: Endpoint must not have a query or fragment: %q", endpoint)
	}
	return strings.TrimRight(u.String(), "/") + "/v1/events/batch", nil
}
